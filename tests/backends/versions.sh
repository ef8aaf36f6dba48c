# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Sourced by build.sh, start.sh and smoke.sh. `backend NAME` sets, for jaeger,
# prometheus or victorialogs: B_VERSION (pinned in NAME/go.mod, the single
# source of truth), B_DIR (the cache directory), B_BIN (the binary), and what
# building it takes: B_MODDIR, B_PKG, B_TAGS, B_LDFLAGS.

backends_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BACKENDS=(jaeger prometheus victorialogs)
EBPFFLOW_CACHE=${EBPFFLOW_CACHE:-/var/cache/ebpfflow}

backend() {
	local mod bin
	B_MODDIR=$backends_dir/$1
	B_TAGS=
	case "$1" in
	jaeger)
		mod=github.com/jaegertracing/jaeger bin=jaeger
		B_PKG=$mod/cmd/jaeger
		;;
	prometheus)
		mod=github.com/prometheus/prometheus bin=prometheus
		B_PKG=$mod/cmd/prometheus
		# No service-discovery plugins (only file and http SD remain): the
		# tests push over OTLP, and the cloud SDKs would double the build.
		B_TAGS=remove_all_sd
		;;
	victorialogs)
		mod=github.com/VictoriaMetrics/VictoriaLogs bin=victoria-logs
		B_PKG=$mod/app/victoria-logs
		;;
	*)
		echo "unknown backend '$1' (want one of: ${BACKENDS[*]})" >&2
		return 1
		;;
	esac
	B_VERSION=$(awk -v m="$mod" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$B_MODDIR/go.mod")
	B_DIR=$EBPFFLOW_CACHE/$1-$B_VERSION
	B_BIN=$B_DIR/$bin
	case "$1" in
	jaeger) B_LDFLAGS="-X $mod/internal/version.latestVersion=$B_VERSION" ;;
	prometheus)
		# Module v0.316.0 is Prometheus 3.16.0.
		local m=${B_VERSION#v0.}
		B_LDFLAGS="-X github.com/prometheus/common/version.Version=3.$((10#${m%%.*} - 300)).${m#*.}"
		;;
	victorialogs) B_LDFLAGS="-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-$B_VERSION" ;;
	esac
}
