#!/usr/bin/env bash
# Proves each backend works end to end: start it, send one record over
# OTLP/HTTP (protobuf, as the collector's otlphttp exporter does), read it back
# through the backend's own query API and compare it field by field, report
# start-up time and RSS, stop it. Ends with "N passed, N failed"; exits 1 on
# any failure.
#
#   tests/backends/smoke.sh [jaeger] [prometheus] [victorialogs]   (default: all three)
#
# Inputs: STATE_DIR (default: a new temporary directory, removed unless
# KEEP=1), EBPFFLOW_CACHE. Needs the binaries from build.sh, plus go, curl, jq.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
. "$here/servers.sh"
. "$here/checks.sh"

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${BACKENDS[@]}")
for name in "${names[@]}"; do backend "$name" >/dev/null; done
own_state=0
if [ -z "${STATE_DIR:-}" ]; then
	STATE_DIR=$(mktemp -d /tmp/ebpfflow-backends-smoke.XXXXXX)
	own_state=1
fi
export STATE_DIR
running=
cleanup() {
	[ -z "$running" ] || "$here/stop.sh" "$running" >/dev/null
	[ "$own_state" = 0 ] || [ "${KEEP:-0}" = 1 ] || rm -rf "$STATE_DIR"
}
trap cleanup EXIT

go_build_env
go build -C "$here/../.." -o "$STATE_DIR/otlpsend" ./tests/backends/otlpsend
# send BACKEND OTLPSEND-ARGS...: sends one record; sets sent_trace_id and
# sent_span_id, or counts a failed check.
send() {
	local who=$1 out kv
	shift
	if ! out=$("$STATE_DIR/otlpsend" "$@"); then
		check "$who: OTLP/HTTP export accepted" yes no
		return 1
	fi
	for kv in $out; do
		case $kv in
		trace_id=*) sent_trace_id=${kv#*=} ;;
		span_id=*) sent_span_id=${kv#*=} ;;
		esac
	done
}

rss() { awk '/^VmRSS/ {printf "%.0f MB", $2 / 1024}' "/proc/$1/status"; }

run="smoke-$(date +%s%N)"
svc=ebpfflow-smoke

smoke_jaeger() {
	local t=$STATE_DIR/jaeger-trace.json
	send jaeger -signal traces -url "$JAEGER_OTLP_HTTP/v1/traces" -service "$svc" -name "smoke span" -attr smoke.run="$run" || return
	local tid=$sent_trace_id sid=$sent_span_id
	if ! poll 30 curl -sf -o "$t" "$JAEGER_QUERY_URL/api/traces/$tid"; then
		check "jaeger: trace $tid found by the query API" found "not found in 30s"
		return
	fi
	local q='.data[0] as $tr | $tr.spans[0] as $s'
	check "jaeger: spans in the trace" 1 "$(jq "$q | \$tr.spans | length" "$t")"
	check "jaeger: trace id" "$tid" "$(jq -r "$q | \$s.traceID" "$t")"
	check "jaeger: span id" "$sid" "$(jq -r "$q | \$s.spanID" "$t")"
	check "jaeger: operation" "smoke span" "$(jq -r "$q | \$s.operationName" "$t")"
	check "jaeger: service.name" "$svc" "$(jq -r "$q | \$tr.processes[\$s.processID].serviceName" "$t")"
	check "jaeger: attribute smoke.run" "$run" "$(jq -r "$q | \$s.tags[] | select(.key == \"smoke.run\") | .value" "$t")"
	check "jaeger: span kind" client "$(jq -r "$q | \$s.tags[] | select(.key == \"span.kind\") | .value" "$t")"
	check "jaeger: duration (us)" 5000 "$(jq -r "$q | \$s.duration" "$t")"
}

smoke_prometheus() {
	local r=$STATE_DIR/prometheus-query.json
	send prometheus -signal metrics -url "$PROMETHEUS_OTLP_HTTP/v1/metrics" -service "$svc" \
		-name ebpfflow.smoke.requests -value 42 -attr smoke.run="$run" || return
	# A monotonic cumulative sum: OTLP name ebpfflow.smoke.requests becomes
	# ebpfflow_smoke_requests_total; service.name becomes the job label.
	found() {
		curl -sfG -o "$r" "$PROMETHEUS_URL/api/v1/query" \
			--data-urlencode "query=ebpfflow_smoke_requests_total{smoke_run=\"$run\"}" &&
			[ "$(jq '.data.result | length' "$r")" -gt 0 ]
	}
	if ! poll 30 found; then
		check "prometheus: series ebpfflow_smoke_requests_total{smoke_run=\"$run\"}" found "not found in 30s"
		return
	fi
	check "prometheus: series" 1 "$(jq '.data.result | length' "$r")"
	check "prometheus: value" 42 "$(jq -r '.data.result[0].value[1]' "$r")"
	check "prometheus: job (service.name)" "$svc" "$(jq -r '.data.result[0].metric.job' "$r")"
	check "prometheus: label smoke_run" "$run" "$(jq -r '.data.result[0].metric.smoke_run' "$r")"
}

smoke_victorialogs() {
	local r=$STATE_DIR/victorialogs-query.json
	send victorialogs -signal logs -url "$VICTORIALOGS_OTLP_HTTP/v1/logs" -service "$svc" -name "smoke log line" -attr smoke.run="$run" || return
	local tid=$sent_trace_id sid=$sent_span_id
	found() {
		curl -sf -o "$r" "$VICTORIALOGS_URL/select/logsql/query" --data-urlencode "query=smoke.run:=\"$run\"" &&
			[ -s "$r" ]
	}
	if ! poll 30 found; then
		check "victorialogs: record with smoke.run=$run (LogsQL)" found "not found in 30s"
		return
	fi
	check "victorialogs: records" 1 "$(wc -l <"$r")"
	check "victorialogs: body (_msg)" "smoke log line" "$(jq -r '._msg' "$r")"
	check "victorialogs: service.name" "$svc" "$(jq -r '.["service.name"]' "$r")"
	check "victorialogs: attribute smoke.run" "$run" "$(jq -r '.["smoke.run"]' "$r")"
	check "victorialogs: trace_id" "$tid" "$(jq -r '.trace_id' "$r")"
	check "victorialogs: span_id" "$sid" "$(jq -r '.span_id' "$r")"
	check "victorialogs: severity_text, severity_number" "INFO 9" "$(jq -r '.severity_text + " " + .severity_number' "$r")"
}

for name in "${names[@]}"; do
	running=$name
	"$here/start.sh" "$name"
	set -a
	. "$STATE_DIR/$name.env"
	set +a
	pidvar="${name^^}_PID"
	"smoke_$name"
	echo "     $name: RSS $(rss "${!pidvar}") after the smoke test"
	"$here/stop.sh" "$name"
	running=
done

checks_summary "backends smoke"
