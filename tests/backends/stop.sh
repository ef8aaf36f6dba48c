#!/usr/bin/env bash
# Stops backends started by start.sh, by the pid each recorded in
# $STATE_DIR/<name>.pid (SIGTERM, then SIGKILL after 10 s), and with WIPE=1
# removes their data, logs and env files.
#
#   STATE_DIR=/tmp/run tests/backends/stop.sh [jaeger] [prometheus] [victorialogs]   (default: all three)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
: "${STATE_DIR:?set STATE_DIR to the directory given to start.sh}"

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${BACKENDS[@]}")
for name in "${names[@]}"; do
	backend "$name" || exit 2
	pidf=$STATE_DIR/$name.pid
	if [ -f "$pidf" ]; then
		pid=$(cat "$pidf")
		# Only the process start.sh launched: a stale pid may name another one by now.
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		if [ "${exe% (deleted)}" != "$(readlink -f "$B_BIN")" ]; then
			echo "stop: $name (pid $pid) is not running"
		elif kill -TERM "$pid" 2>/dev/null; then
			for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			if kill -0 "$pid" 2>/dev/null; then
				kill -KILL "$pid"
				echo "stop: $name (pid $pid) did not exit on SIGTERM; killed"
			else
				echo "stop: $name (pid $pid) stopped"
			fi
		fi
		rm -f "$pidf"
	fi
	if [ "${WIPE:-0}" = 1 ]; then
		rm -rf "${STATE_DIR:?}/$name" "$STATE_DIR/$name.log" "$STATE_DIR/$name.env"
	fi
done
exit 0
