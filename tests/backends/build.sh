#!/usr/bin/env bash
# Builds the telemetry backends the end-to-end tests export to, from the Go
# module proxy, once: Jaeger (cmd/jaeger), Prometheus (cmd/prometheus) and
# VictoriaLogs (app/victoria-logs), each from its pinned module in <name>/ into
# ${EBPFFLOW_CACHE:-/var/cache/ebpfflow}/<name>-<version>/. A binary that is
# already there is not rebuilt (FORCE=1 rebuilds). See README.md.
#
#   tests/backends/build.sh [jaeger] [prometheus] [victorialogs]   (default: all three)
#
# They build one after the other: each `go build` already keeps both cores
# busy, and running them side by side only adds memory pressure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
. "$here/servers.sh"

go_build_env

if ! mkdir -p "$EBPFFLOW_CACHE" 2>/dev/null || [ ! -w "$EBPFFLOW_CACHE" ]; then
	echo "backends build: cannot write $EBPFFLOW_CACHE; set EBPFFLOW_CACHE to a writable directory" >&2
	exit 1
fi

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${BACKENDS[@]}")
for name in "${names[@]}"; do backend "$name" >/dev/null; done # unknown names fail before any build

for name in "${names[@]}"; do
	backend "$name"
	# One build per binary at a time: a second caller waits, then finds it.
	exec 9>"$EBPFFLOW_CACHE/.$name-build.lock"
	flock 9
	if [ "${FORCE:-0}" = 1 ] || [ ! -x "$B_BIN" ]; then
		echo "backends build: $name $B_VERSION ($B_PKG${B_TAGS:+, tags $B_TAGS})"
		mkdir -p "$B_DIR"
		TIMEFORMAT='%R %U %S'
		{ time go build -C "$B_MODDIR" -tags "$B_TAGS" -ldflags "-s -w $B_LDFLAGS" -o "$B_BIN.tmp" "$B_PKG" 2>&3; } 3>&2 2>"$B_DIR/.time"
		mv -f "$B_BIN.tmp" "$B_BIN"
		read -r wall user sys <"$B_DIR/.time"
		rm -f "$B_DIR/.time"
		cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')
		printf '%s %s built %s with %s; took %ss wall, %s CPU-s\n' "$(basename "$B_BIN")" "$name-$B_VERSION" \
			"$(date -u +%FT%TZ)" "$(go env GOVERSION)" "$wall" "$cpu" >>"$B_DIR/BUILDINFO"
		echo "backends build: $name done in ${wall}s wall, ${cpu} CPU-s"
	fi
	exec 9>&-
	printf 'backends build: %-13s %s\n' "$name" "$(du -h "$B_BIN" | cut -f1) $B_BIN"
done
