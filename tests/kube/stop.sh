#!/usr/bin/env bash
# Stops the control plane start.sh started, by the pids it recorded in
# $STATE_DIR/<name>.pid, clients before servers (SIGTERM, then SIGKILL after
# 10 s); with WIPE=1 also removes STATE_DIR.
#
#   STATE_DIR=/tmp/kube tests/kube/stop.sh
set -uo pipefail
: "${STATE_DIR:?set STATE_DIR to the directory given to start.sh}"
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
	f=$STATE_DIR/$name.pid
	[ -f "$f" ] || continue
	pid=$(cat "$f")
	# Only the process start.sh launched: a stale pid may name another one by now.
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	exe=${exe% (deleted)}
	if [ "${exe##*/}" = "$name" ] && kill -TERM "$pid" 2>/dev/null; then
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid"
			echo "stop: $name (pid $pid) did not exit on SIGTERM; killed"
		else
			echo "stop: $name (pid $pid) stopped"
		fi
	fi
	rm -f "$f"
done
if [ "${WIPE:-0}" = 1 ]; then
	rm -rf "${STATE_DIR:?}" && echo "stop: removed $STATE_DIR"
fi
exit 0
