#!/usr/bin/env bash
# Builds the Kubernetes control plane and tools the tests run, from the Go
# module proxy, once: kube-apiserver, kube-controller-manager, kube-scheduler
# and kubectl (k8s.io/kubernetes), etcd (the version Kubernetes requires), kwok
# (a fake kubelet) and helm. Versions are pinned by tools/go.mod; binaries land
# in ${EBPFFLOW_CACHE:-/var/cache/ebpfflow}/<name>-<version>/ and a binary that
# is already there is not rebuilt (FORCE=1 rebuilds). See README.md.
#
# All seven come from one module in one `go build`, so the ~2k packages they
# share (client-go, apimachinery, grpc, etcd client, ...) compile once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
. "$here/../backends/servers.sh"

go_build_env

order=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm)
declare -A pkg=(
	[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
	[kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
	[kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
	[kubectl]=k8s.io/kubernetes/cmd/kubectl
	[etcd]=./etcd
	[kwok]=sigs.k8s.io/kwok/cmd/kwok
	[helm]=helm.sh/helm/v4/cmd/helm
)
declare -A dir=(
	[kube-apiserver]=$KUBE_BIN [kube-controller-manager]=$KUBE_BIN
	[kube-scheduler]=$KUBE_BIN [kubectl]=$KUBE_BIN
	[etcd]=$ETCD_BIN_DIR [kwok]=$KWOK_BIN_DIR [helm]=$HELM_BIN_DIR
)

if ! mkdir -p "$EBPFFLOW_CACHE" 2>/dev/null || [ ! -w "$EBPFFLOW_CACHE" ]; then
	echo "kube build: cannot write $EBPFFLOW_CACHE; set EBPFFLOW_CACHE to a writable directory" >&2
	exit 1
fi
# One build at a time per cache: a second caller waits, then finds the binaries.
exec 9>"$EBPFFLOW_CACHE/.kube-build.lock"
flock 9

missing=()
for b in "${order[@]}"; do
	if [ "${FORCE:-0}" = 1 ] || [ ! -x "${dir[$b]}/$b" ]; then missing+=("$b"); fi
done

if [ ${#missing[@]} -gt 0 ]; then
	pkgs=()
	for b in "${missing[@]}"; do pkgs+=("${pkg[$b]}"); done
	minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
	# Version stamps as the projects' own release builds set them; without
	# them kube-apiserver reports v0.0.0-master and helm "v4.3".
	ldflags="-s -w
 -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION
 -X k8s.io/component-base/version.gitMajor=1
 -X k8s.io/component-base/version.gitMinor=$minor
 -X k8s.io/component-base/version.gitTreeState=clean
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION
 -X k8s.io/client-go/pkg/version.gitMajor=1
 -X k8s.io/client-go/pkg/version.gitMinor=$minor
 -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
	tmp="$(mktemp -d "$EBPFFLOW_CACHE/.kube-build.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	echo "kube build: ${missing[*]} (kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, helm $HELM_VERSION)"
	TIMEFORMAT='%R %U %S'
	{ time go build -C "$here/tools" -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}" 2>&3; } 3>&2 2>"$tmp/.time"
	read -r wall user sys <"$tmp/.time"
	cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')
	for b in "${missing[@]}"; do
		mkdir -p "${dir[$b]}"
		mv -f "$tmp/$b" "${dir[$b]}/$b"
		printf '%s %s built %s with %s; build of [%s] took %ss wall, %s CPU-s\n' \
			"$b" "$(basename "${dir[$b]}")" "$(date -u +%FT%TZ)" "$(go env GOVERSION)" \
			"${missing[*]}" "$wall" "$cpu" >>"${dir[$b]}/BUILDINFO"
	done
	echo "kube build: done in ${wall}s wall, ${cpu} CPU-s"
fi

# kwok needs stage definitions (what happens to nodes and pods); take the
# ones its module ships, so nothing at run time reads the module cache.
if [ ! -s "$KWOK_BIN_DIR/stages.yaml" ] || [ "${FORCE:-0}" = 1 ]; then
	kwok_dir="$(go list -C "$here/tools" -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
	for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		echo "---"
		cat "$kwok_dir/kustomize/stage/$f"
	done >"$KWOK_BIN_DIR/stages.yaml.tmp"
	mv -f "$KWOK_BIN_DIR/stages.yaml.tmp" "$KWOK_BIN_DIR/stages.yaml"
fi

for b in "${order[@]}"; do
	printf 'kube build: %-24s %s\n' "$b" "$(du -h "${dir[$b]}/$b" | cut -f1) ${dir[$b]}/$b"
done
