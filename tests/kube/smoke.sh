#!/usr/bin/env bash
# Proves the Kubernetes test cluster and helm work: helm version, lint (a good
# and a broken chart) and template; then a real control plane from start.sh:
# a namespace, a kwok node, a Deployment that the controller manager turns
# into a ReplicaSet and the scheduler and kwok into Running pods with IPs, a
# Service and the EndpointSlice the controller fills with exactly those IPs,
# RBAC denials (a static token without rights, and a ServiceAccount token
# that may read pods but not secrets), and `kubectl apply --dry-run=server`
# (accepted without storing, invalid and unknown fields rejected, helm's
# output accepted). Reports the parts' RSS. Ends with "N passed, N failed";
# exits 1 on any failure.
#
#   tests/kube/smoke.sh
#
# Inputs: STATE_DIR (default: a new temporary directory, removed unless
# KEEP=1), EBPFFLOW_CACHE. Needs the binaries from build.sh, plus jq.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
. "$here/../backends/checks.sh"

own_state=0
if [ -z "${STATE_DIR:-}" ]; then
	STATE_DIR=$(mktemp -d /tmp/ebpfflow-kube-smoke.XXXXXX)
	own_state=1
fi
export STATE_DIR
cleanup() {
	"$here/stop.sh" >/dev/null
	[ "$own_state" = 0 ] || [ "${KEEP:-0}" = 1 ] || rm -rf "$STATE_DIR"
}
trap cleanup EXIT


# ---------------------------------------------------------------- helm ----
helm() { "$HELM_BIN_DIR/helm" "$@"; }
export HELM_CACHE_HOME=$STATE_DIR/helm/cache HELM_CONFIG_HOME=$STATE_DIR/helm/config HELM_DATA_HOME=$STATE_DIR/helm/data
check "helm: version" "$HELM_VERSION" "$(helm version --template '{{.Version}}')"
chart=$STATE_DIR/helm/smokechart
mkdir -p "$STATE_DIR/helm"
helm create "$chart" >/dev/null
lint=$(helm lint "$chart" 2>&1) || true
check "helm: lint of 'helm create' chart" "1 chart(s) linted, 0 chart(s) failed" "$(echo "$lint" | tail -1)"
cp -r "$chart" "$chart-broken"
sed -i '/^version:/d' "$chart-broken/Chart.yaml"
fails "helm: lint of a chart without a version" "version is required" helm lint "$chart-broken"
helm template smoke "$chart" --namespace smoke >"$STATE_DIR/helm/rendered.yaml"
check "helm: template renders ServiceAccount, Service, Deployment" "Deployment Service ServiceAccount" \
	"$(awk '/^kind:/ {print $2}' "$STATE_DIR/helm/rendered.yaml" | grep -v '^Pod$' | sort | xargs)"

# ---------------------------------------------------------------- kube ----
"$here/start.sh"
set -a
. "$STATE_DIR/kube.env"
set +a
k() { "$KUBECTL" "$@"; }

check "kube: server version" "$KUBE_VERSION" "$(k version -o json | jq -r .serverVersion.gitVersion)"
check "kube: kubectl version" "$KUBE_VERSION" "$(k version -o json | jq -r .clientVersion.gitVersion)"
k create namespace smoke >/dev/null
check "kube: namespace" Active "$(k get namespace smoke -o jsonpath='{.status.phase}')"

k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-1
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: kwok-node-1, kubernetes.io/os: linux, type: kwok}
EOF
k wait --for=condition=Ready node/kwok-node-1 --timeout=30s >/dev/null || true
check "kube: kwok node Ready" True \
	"$(k get node kwok-node-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"

k apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: smoke}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.invalid/web:1
          ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: smoke}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
EOF
k -n smoke rollout status deploy/web --timeout=60s >/dev/null || true
k -n smoke get rs,pods -o json >"$STATE_DIR/workload.json"
rs=$(jq -r '[.items[] | select(.kind == "ReplicaSet" and .metadata.ownerReferences[0].kind == "Deployment"
	and .metadata.ownerReferences[0].name == "web") | .metadata.name] | join(" ")' "$STATE_DIR/workload.json")
check "kube: ReplicaSets owned by Deployment web" 1 "$(echo "$rs" | wc -w)"
pods='[.items[] | select(.kind == "Pod")]'
check "kube: pods owned by that ReplicaSet" "2 ReplicaSet/$rs" \
	"$(jq -r "$pods | [length, (map(.metadata.ownerReferences[0] | .kind + \"/\" + .name) | unique | join(\",\"))] | join(\" \")" "$STATE_DIR/workload.json")"
check "kube: pods Running" "Running Running" "$(jq -r "$pods | map(.status.phase) | join(\" \")" "$STATE_DIR/workload.json")"
check "kube: pods bound to the kwok node" "kwok-node-1 kwok-node-1" \
	"$(jq -r "$pods | map(.spec.nodeName) | join(\" \")" "$STATE_DIR/workload.json")"
pod_ips=$(jq -r "$pods | map(.status.podIP // \"none\") | sort | unique | join(\" \")" "$STATE_DIR/workload.json")
in_cidr=$(for ip in $pod_ips; do [[ "$ip" == "${KUBE_POD_CIDR%%.0.0/*}".* ]] && echo "$ip"; done | wc -l)
check "kube: two distinct pod IPs in $KUBE_POD_CIDR ($pod_ips)" 2 "$in_cidr"

check "kube: Service got a ClusterIP in $KUBE_SERVICE_CIDR" yes \
	"$([[ "$(k -n smoke get svc web -o jsonpath='{.spec.clusterIP}')" == "${KUBE_SERVICE_CIDR%%.0.0/*}".* ]] && echo yes || echo no)"
slice_ips() {
	k -n smoke get endpointslices -l kubernetes.io/service-name=web -o json |
		jq -r '[.items[].endpoints[] | select(.conditions.ready) | .addresses[]] | sort | join(" ")'
}
slice_has_pods() { [ "$(slice_ips)" = "$pod_ips" ]; }
poll 30 slice_has_pods || true
check "kube: EndpointSlice of Service web holds the ready pod IPs" "$pod_ips" "$(slice_ips)"
check "kube: EndpointSlice port" "http 8080" \
	"$(k -n smoke get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{.items[0].ports[0].name} {.items[0].ports[0].port}')"

# RBAC: a static token with no rights, and a ServiceAccount token that may
# only get/list pods in namespace smoke.
fails "kube: RBAC denies a token without rights" 'User "viewer" cannot list resource "pods"' \
	k --context viewer -n smoke get pods
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: smoke}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: smoke}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: smoke}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: reader, namespace: smoke}]
EOF
token=$(k -n smoke create token reader --duration=10m)
as_reader() { "$KUBECTL" --kubeconfig=/dev/null --server="$KUBE_API_URL" --certificate-authority="$KUBE_CA_FILE" --token="$token" "$@"; }
check "kube: restricted ServiceAccount token lists pods" 2 "$(as_reader -n smoke get pods -o name | wc -l)"
fails "kube: RBAC denies it secrets" 'User "system:serviceaccount:smoke:reader" cannot list resource "secrets" in API group "" in the namespace "smoke"' \
	as_reader -n smoke get secrets
fails "kube: RBAC denies it pods in another namespace" 'cannot list resource "pods" in API group "" in the namespace "default"' \
	as_reader -n default get pods

# kubectl apply --dry-run=server: the server defaults, validates and admits,
# and stores nothing.
dry=$(k apply --dry-run=server -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: dry, namespace: smoke}
spec:
  selector: {matchLabels: {app: dry}}
  template:
    metadata: {labels: {app: dry}}
    spec: {containers: [{name: c, image: registry.invalid/dry:1}]}
EOF
)
check "kube: dry-run=server accepts a valid Deployment" "deployment.apps/dry created (server dry run)" "$dry"
fails "kube: ... and stores nothing" '"dry" not found' k -n smoke get deploy dry
fails "kube: dry-run=server rejects a selector that does not match the labels" '`selector` does not match template `labels`' \
	k apply --dry-run=server -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, namespace: smoke}
spec:
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: c, image: registry.invalid/bad:1}]}
EOF
fails "kube: dry-run=server --validate=strict rejects an unknown field" 'unknown field "spec.replicaz"' \
	k apply --dry-run=server --validate=strict -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, namespace: smoke}
spec:
  replicaz: 2
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec: {containers: [{name: c, image: registry.invalid/bad:1}]}
EOF
objects=$(grep -c '^kind:' "$STATE_DIR/helm/rendered.yaml")
check "kube: dry-run=server accepts every object helm template rendered" "$objects" \
	"$(k apply --dry-run=server -n smoke -f "$STATE_DIR/helm/rendered.yaml" | grep -c 'created (server dry run)')"

for p in ETCD KUBE_APISERVER KUBE_CONTROLLER_MANAGER KUBE_SCHEDULER KWOK; do
	v=${p}_PID
	[ -n "${!v}" ] && awk -v n="$p" '/^VmRSS/ {printf "     RSS %-24s %4.0f MB\n", n, $2 / 1024}' "/proc/${!v}/status"
done
checks_summary "kube smoke"
