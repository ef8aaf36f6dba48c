#!/usr/bin/env bash
# Starts a real Kubernetes control plane on 127.0.0.1 at random free ports,
# from the binaries build.sh cached: etcd, kube-apiserver, and (unless turned
# off) kube-controller-manager, kube-scheduler and kwok as a fake kubelet for
# nodes annotated kwok.x-k8s.io/node=fake. Makes its own PKI, kubeconfig and
# tokens, waits until each part is ready, and writes $STATE_DIR/kube.env
# (KEY=value lines). See README.md for the inputs and the variables.
#
#   STATE_DIR=/tmp/kube tests/kube/start.sh        then    tests/kube/stop.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
. "$here/../backends/servers.sh"

: "${STATE_DIR:?set STATE_DIR to the directory for this cluster}"
WITH_KCM=${WITH_KCM:-1}
WITH_SCHEDULER=${WITH_SCHEDULER:-1}
WITH_KWOK=${WITH_KWOK:-1}
KWOK_CIDR=${KWOK_CIDR:-10.244.0.0/16}
SERVICE_CIDR=${SERVICE_CIDR:-10.96.0.0/16}
READY_TIMEOUT=${READY_TIMEOUT:-90}
ETCD_BIN=${ETCD_BIN:-$ETCD_BIN_DIR/etcd}
KUBECTL=$KUBE_BIN/kubectl

need=("$ETCD_BIN" "$KUBE_BIN/kube-apiserver" "$KUBECTL")
[ "$WITH_KCM" = 1 ] && need+=("$KUBE_BIN/kube-controller-manager")
[ "$WITH_SCHEDULER" = 1 ] && need+=("$KUBE_BIN/kube-scheduler")
[ "$WITH_KWOK" = 1 ] && need+=("$KWOK_BIN_DIR/kwok" "$KWOK_BIN_DIR/stages.yaml")
for f in "${need[@]}"; do
	[ -e "$f" ] || { echo "start: $f is missing; run tests/kube/build.sh first" >&2; exit 1; }
done
for c in openssl curl ss; do
	command -v "$c" >/dev/null || { echo "start: $c is not installed" >&2; exit 1; }
done

mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
if [ -e "$STATE_DIR/etcd.pid" ] && kill -0 "$(cat "$STATE_DIR/etcd.pid")" 2>/dev/null; then
	echo "start: a cluster already runs in $STATE_DIR (stop it with tests/kube/stop.sh)" >&2
	exit 1
fi
PKI=$STATE_DIR/pki
KC=$STATE_DIR/kubeconfig
mkdir -p "$PKI"
t0=$(date +%s.%N)
since_t0() { awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.2f", t1 - t0}'; }

free_port ETCD_PORT
free_port ETCD_PEER_PORT
free_port API_PORT
free_port KCM_PORT
free_port SCHED_PORT

# launch NAME CMD...: start in the background, log and pid in STATE_DIR.
launch() {
	local name=$1
	shift
	"$@" >"$STATE_DIR/$name.log" 2>&1 &
	echo $! >"$STATE_DIR/$name.pid"
}
# wait_ready NAME CMD...: poll CMD every 50 ms until it succeeds; fail with
# the log's tail if the process exits or READY_TIMEOUT passes.
wait_ready() {
	local name=$1 pid deadline
	shift
	pid=$(cat "$STATE_DIR/$name.pid")
	deadline=$(($(date +%s) + READY_TIMEOUT))
	until "$@" >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
			echo "start: $name did not become ready; last lines of $STATE_DIR/$name.log:" >&2
			tail -20 "$STATE_DIR/$name.log" >&2
			"$here/stop.sh" >/dev/null
			exit 1
		fi
		sleep 0.05
	done
	printf 'start: %-24s ready at %5ss (pid %s)\n' "$name" "$(since_t0)" "$pid"
}

# ---- PKI: CA, serving cert, admin client cert, service-account keys, tokens ----
if [ ! -f "$PKI/tokens.csv" ]; then
	(
		cd "$PKI"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=ebpfflow-test-ca" 2>/dev/null
		cat >serving.ext <<-EOF
			subjectAltName=IP:127.0.0.1,IP:${SERVICE_CIDR%.0/*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
			extendedKeyUsage=serverAuth
			keyUsage=digitalSignature,keyEncipherment
		EOF
		openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile serving.ext 2>/dev/null
		printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >client.ext
		# O=system:masters: cluster-admin through the bootstrap RBAC binding.
		openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
		openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 -extfile client.ext 2>/dev/null
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		# Static tokens (token,user,uid,"groups"): an admin, and "viewer", who
		# is only system:authenticated and so has no RBAC rights.
		openssl rand -hex 16 >admin.token
		openssl rand -hex 16 >viewer.token
		echo "$(cat admin.token),admin-token-user,uid-admin,\"system:masters\"" >tokens.csv.tmp
		echo "$(cat viewer.token),viewer,uid-viewer" >>tokens.csv.tmp
		mv tokens.csv.tmp tokens.csv
	)
fi
ADMIN_TOKEN=$(cat "$PKI/admin.token")

# ---- etcd (test data only: no fsync) ----
launch etcd "$ETCD_BIN" --name ebpfflow-test --data-dir "$STATE_DIR/etcd-data" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster "ebpfflow-test=http://127.0.0.1:$ETCD_PEER_PORT" \
	--unsafe-no-fsync
wait_ready etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# ---- kube-apiserver ----
# The ServiceAccount admission plugin needs the controller manager to create
# each namespace's "default" ServiceAccount; without it, it is off (as envtest
# does). --endpoint-reconciler-type=none: the lease reconciler refuses a
# loopback advertise address, and nothing here needs the kubernetes Service's
# endpoints.
admission=()
[ "$WITH_KCM" = 1 ] || admission=(--disable-admission-plugins=ServiceAccount)
# shellcheck disable=SC2086 # EXTRA_APISERVER_ARGS is a list of flags
launch kube-apiserver "$KUBE_BIN/kube-apiserver" \
	--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
	--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
	--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
	--client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
	--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--api-audiences=https://kubernetes.default.svc.cluster.local \
	--service-cluster-ip-range="$SERVICE_CIDR" \
	--authorization-mode=Node,RBAC --allow-privileged=true \
	--endpoint-reconciler-type=none --cert-dir="$STATE_DIR/apiserver-certs" \
	"${admission[@]}" ${EXTRA_APISERVER_ARGS:-}
api_ready() {
	[ "$(curl -s --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$API_PORT/readyz")" = ok ]
}
wait_ready kube-apiserver api_ready

# ---- kubeconfig: contexts admin (client cert, the default), admin-token, viewer ----
kc() { "$KUBECTL" --kubeconfig "$KC.tmp" config "$@" >/dev/null; }
rm -f "$KC.tmp"
kc set-cluster test --server="https://127.0.0.1:$API_PORT" --certificate-authority="$PKI/ca.crt" --embed-certs=true
kc set-credentials admin --client-certificate="$PKI/admin.crt" --client-key="$PKI/admin.key" --embed-certs=true
kc set-credentials admin-token --token="$ADMIN_TOKEN"
kc set-credentials viewer --token="$(cat "$PKI/viewer.token")"
for u in admin admin-token viewer; do kc set-context "$u" --cluster=test --user="$u"; done
kc use-context admin
mv -f "$KC.tmp" "$KC"

# ---- kube-controller-manager: Deployments -> ReplicaSets -> Pods, EndpointSlices,
# ServiceAccounts and tokens, garbage collection, namespace deletion ----
if [ "$WITH_KCM" = 1 ]; then
	# Without kwok's node heartbeats, node lifecycle would taint the nodes
	# unreachable and evict their pods after 5 minutes.
	controllers='*'
	[ "$WITH_KWOK" = 1 ] || controllers='*,-node-lifecycle-controller,-taint-eviction-controller'
	launch kube-controller-manager "$KUBE_BIN/kube-controller-manager" --kubeconfig="$KC" \
		--authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
		--bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
		--use-service-account-credentials=false \
		--service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
		--cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" --controllers="$controllers"
	wait_ready kube-controller-manager curl -sfk "https://127.0.0.1:$KCM_PORT/healthz"
fi

# ---- kube-scheduler: binds pods that name no node ----
if [ "$WITH_SCHEDULER" = 1 ]; then
	launch kube-scheduler "$KUBE_BIN/kube-scheduler" --kubeconfig="$KC" \
		--authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
		--bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false
	wait_ready kube-scheduler curl -sfk "https://127.0.0.1:$SCHED_PORT/healthz"
fi

# ---- kwok: node heartbeats, pods Running with IPs from KWOK_CIDR, deletion ----
if [ "$WITH_KWOK" = 1 ]; then
	launch kwok "$KWOK_BIN_DIR/kwok" --kubeconfig="$KC" --config="$KWOK_BIN_DIR/stages.yaml" \
		--manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
		--cidr="$KWOK_CIDR" --node-ip=192.0.2.10
	# kwok serves no port: ready once it watches nodes (the Node it manages
	# turns Ready within a second of its creation).
	wait_ready kwok grep -q 'Watch nodes' "$STATE_DIR/kwok.log"
fi

pid() { cat "$STATE_DIR/$1.pid" 2>/dev/null || true; }
cat >"$STATE_DIR/kube.env" <<EOF
KUBECONFIG=$KC
KUBECTL=$KUBECTL
HELM=$HELM_BIN_DIR/helm
KUBE_VERSION=$KUBE_VERSION
KUBE_API_URL=https://127.0.0.1:$API_PORT
KUBE_API_PORT=$API_PORT
KUBE_CA_FILE=$PKI/ca.crt
KUBE_ADMIN_TOKEN=$ADMIN_TOKEN
KUBE_VIEWER_TOKEN=$(cat "$PKI/viewer.token")
KUBE_SERVICE_CIDR=$SERVICE_CIDR
KUBE_POD_CIDR=$KWOK_CIDR
ETCD_URL=http://127.0.0.1:$ETCD_PORT
ETCD_PID=$(pid etcd)
KUBE_APISERVER_PID=$(pid kube-apiserver)
KUBE_CONTROLLER_MANAGER_PID=$(pid kube-controller-manager)
KUBE_SCHEDULER_PID=$(pid kube-scheduler)
KWOK_PID=$(pid kwok)
EOF
printf 'start: kubernetes %s ready in %ss; env in %s\n' "$KUBE_VERSION" "$(since_t0)" "$STATE_DIR/kube.env"
