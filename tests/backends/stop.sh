#!/usr/bin/env bash
# Stops backends started by start.sh, by the pid each recorded in
# $STATE_DIR/<name>.pid (SIGTERM, then SIGKILL after 10 s), and with WIPE=1
# removes their data, logs and env files.
#
#   STATE_DIR=/tmp/run tests/backends/stop.sh [jaeger] [prometheus] [victorialogs]   (default: all three)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
. "$here/servers.sh"
: "${STATE_DIR:?set STATE_DIR to the directory given to start.sh}"

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${BACKENDS[@]}")
for name in "${names[@]}"; do
	backend "$name" || exit 2
	stop_pidfile "$name" "$STATE_DIR/$name.pid" "$B_BIN"
	if [ "${WIPE:-0}" = 1 ]; then
		rm -rf "${STATE_DIR:?}/$name" "$STATE_DIR/$name.log" "$STATE_DIR/$name.env"
	fi
done
exit 0
