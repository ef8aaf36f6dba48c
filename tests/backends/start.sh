#!/usr/bin/env bash
# Starts one telemetry backend built by build.sh on 127.0.0.1 at random free
# ports, waits until it accepts OTLP and answers queries, and writes
# $STATE_DIR/<name>.env (KEY=value lines). See README.md for the variables.
#
#   STATE_DIR=/tmp/run tests/backends/start.sh jaeger|prometheus|victorialogs
#
# Inputs: STATE_DIR (required; created), READY_TIMEOUT (seconds, default 60),
# PROMETHEUS_CONFIG (a prometheus.yml to use instead of the default one),
# EBPFFLOW_CACHE. Stop with stop.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
. "$here/servers.sh"

[ $# -eq 1 ] || { echo "usage: STATE_DIR=<dir> $0 <${BACKENDS[*]// /|}>" >&2; exit 2; }
name=$1
backend "$name"
: "${STATE_DIR:?set STATE_DIR to the directory for this run}"
[ -x "$B_BIN" ] || { echo "start: $B_BIN is missing; run tests/backends/build.sh $name first" >&2; exit 1; }
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
pidf=$STATE_DIR/$name.pid
if [ -e "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
	echo "start: $name already runs (pid $(cat "$pidf"), $pidf)" >&2
	exit 1
fi
data=$STATE_DIR/$name
log=$STATE_DIR/$name.log
mkdir -p "$data"

case "$name" in
jaeger)
	free_port otlp_grpc; free_port otlp_http; free_port query_http; free_port query_grpc
	cat >"$data/config.yaml" <<-EOF
		# All-in-one Jaeger: OTLP in, in-memory storage, query API.
		service:
		  extensions: [jaeger_storage, jaeger_query]
		  pipelines:
		    traces:
		      receivers: [otlp]
		      processors: [batch]
		      exporters: [jaeger_storage_exporter]
		  telemetry:
		    metrics: {level: none}
		extensions:
		  jaeger_storage:
		    backends:
		      memstore: {memory: {max_traces: 100000}}
		  jaeger_query:
		    storage: {traces: memstore}
		    # On by default: it would send the query service's own spans
		    # to whatever listens on localhost:4317.
		    enable_tracing: false
		    http: {endpoint: "127.0.0.1:$query_http"}
		    grpc: {endpoint: "127.0.0.1:$query_grpc"}
		receivers:
		  otlp:
		    protocols:
		      grpc: {endpoint: "127.0.0.1:$otlp_grpc"}
		      http: {endpoint: "127.0.0.1:$otlp_http"}
		processors:
		  batch: {timeout: 200ms}
		exporters:
		  jaeger_storage_exporter: {trace_storage: memstore}
	EOF
	cmd=("$B_BIN" --config "$data/config.yaml")
	# The collector starts receivers last: once OTLP/HTTP answers (405 to a
	# GET), storage, query API and OTLP/gRPC are up too.
	ready() {
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$otlp_http/v1/traces")" = 405 ] &&
			curl -sf -o /dev/null "http://127.0.0.1:$query_http/api/services"
	}
	env_lines="JAEGER_OTLP_GRPC=127.0.0.1:$otlp_grpc
JAEGER_OTLP_HTTP=http://127.0.0.1:$otlp_http
JAEGER_QUERY_URL=http://127.0.0.1:$query_http
JAEGER_QUERY_GRPC=127.0.0.1:$query_grpc"
	;;
prometheus)
	free_port port
	config=${PROMETHEUS_CONFIG:-$data/prometheus.yml}
	if [ -z "${PROMETHEUS_CONFIG:-}" ]; then
		# Nothing is scraped; samples arrive over OTLP, possibly out of order
		# from several senders, hence the out-of-order window.
		cat >"$config" <<-EOF
			global: {}
			storage:
			  tsdb:
			    out_of_order_time_window: 30m
		EOF
	fi
	cmd=("$B_BIN" --config.file="$config" --storage.tsdb.path="$data/data"
		--web.listen-address="127.0.0.1:$port" --web.enable-otlp-receiver)
	ready() { curl -sf -o /dev/null "http://127.0.0.1:$port/-/ready"; }
	env_lines="PROMETHEUS_URL=http://127.0.0.1:$port
PROMETHEUS_OTLP_HTTP=http://127.0.0.1:$port/api/v1/otlp"
	;;
victorialogs)
	free_port port
	cmd=("$B_BIN" -storageDataPath="$data/data" -httpListenAddr="127.0.0.1:$port")
	ready() { [ "$(curl -sf "http://127.0.0.1:$port/health")" = OK ]; }
	env_lines="VICTORIALOGS_URL=http://127.0.0.1:$port
VICTORIALOGS_OTLP_HTTP=http://127.0.0.1:$port/insert/opentelemetry"
	;;
esac

t0=$(date +%s.%N)
"${cmd[@]}" >"$log" 2>&1 &
pid=$!
echo "$pid" >"$pidf"
deadline=$(($(date +%s) + ${READY_TIMEOUT:-60}))
until ready; do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "start: $name exited before it was ready; last lines of $log:" >&2
		tail -20 "$log" >&2
		rm -f "$pidf"
		exit 1
	fi
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "start: $name not ready after ${READY_TIMEOUT:-60}s; last lines of $log:" >&2
		tail -20 "$log" >&2
		kill "$pid" 2>/dev/null || true
		rm -f "$pidf"
		exit 1
	fi
	sleep 0.05
done
took=$(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.2f", t1 - t0}')

upper=${name^^}
{
	echo "$env_lines"
	echo "${upper}_PID=$pid"
	echo "${upper}_LOG=$log"
	echo "${upper}_VERSION=$B_VERSION"
} >"$STATE_DIR/$name.env"
printf 'start: %s %s ready in %ss (pid %s); env in %s\n' "$name" "$B_VERSION" "$took" "$pid" "$STATE_DIR/$name.env"
