#!/usr/bin/env bash
# Stops the control plane start.sh started, by the pids it recorded in
# $STATE_DIR/<name>.pid, clients before servers (SIGTERM, then SIGKILL after
# 10 s); with WIPE=1 also removes STATE_DIR.
#
#   STATE_DIR=/tmp/kube tests/kube/stop.sh
set -uo pipefail
: "${STATE_DIR:?set STATE_DIR to the directory given to start.sh}"
. "$(dirname "$0")/../backends/servers.sh"
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
	stop_pidfile "$name" "$STATE_DIR/$name.pid" "$name"
done
if [ "${WIPE:-0}" = 1 ]; then
	rm -rf "${STATE_DIR:?}" && echo "stop: removed $STATE_DIR"
fi
exit 0
