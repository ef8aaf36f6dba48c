# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Sourced by build.sh and start.sh: the pinned versions (read from tools/go.mod,
# the single source of truth) and the cache directories they are built into.
# Sets KUBE_VERSION ETCD_VERSION KWOK_VERSION HELM_VERSION EBPFFLOW_CACHE and
# KUBE_BIN ETCD_BIN_DIR KWOK_BIN_DIR HELM_BIN_DIR.

kube_tools="$(cd "$(dirname "${BASH_SOURCE[0]}")/tools" && pwd)"
kube_pin() { awk -v m="$1" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$kube_tools/go.mod"; }
KUBE_VERSION=$(kube_pin k8s.io/kubernetes)
ETCD_VERSION=$(kube_pin go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(kube_pin sigs.k8s.io/kwok)
HELM_VERSION=$(kube_pin helm.sh/helm/v4)
EBPFFLOW_CACHE=${EBPFFLOW_CACHE:-/var/cache/ebpfflow}
KUBE_BIN=$EBPFFLOW_CACHE/kubernetes-$KUBE_VERSION
ETCD_BIN_DIR=$EBPFFLOW_CACHE/etcd-$ETCD_VERSION
KWOK_BIN_DIR=$EBPFFLOW_CACHE/kwok-$KWOK_VERSION
HELM_BIN_DIR=$EBPFFLOW_CACHE/helm-$HELM_VERSION
unset -f kube_pin
