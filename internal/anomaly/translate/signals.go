// Package translate maps pdata to the anomaly engine's observations and the
// engine's alerts to `anomaly` log records (telemetry contract:
// shared/design/telemetry.md). It is shared by the anomaly_detection
// processor and connector.
//
// Series extracted:
//
//   - network.flow, per edge (source → destination:port, transport; a side
//     is named by its k8s workload or service where the record or, for the
//     local side, the resource says so, else by its address): p99 of
//     ebpfflow.tcp.rtt_us (ms); traffic (bytes both ways per second, each
//     connection counted once when both ends are on this node); TCP
//     retransmitted segments over segments sent, gated on volume.
//   - network.drop, per drop reason and edge: drops per second; a window
//     without drop records is a zero, and a rise needs min_count drops.
//   - dns.lookup, per resolver (server.address): the ratio of TIMEOUT
//     answers and of errors other than NXDOMAIN, gated on volume; p99 of
//     ebpfflow.dns.duration_ms of answered queries.
//   - HTTP spans (kind SERVER or CLIENT with HTTP attributes), per service
//     and, for clients, peer (server.address:server.port): p99 duration
//     (ms) and the 5xx ratio, gated on volume.
//   - Metrics, per metric and identifying attributes (resource and point
//     attributes except Config.ExcludeAttributes): monotonic sums as rates
//     per second (cumulative ones per original stream with reset handling,
//     then summed), gauges and non-monotonic sums as values, histograms and
//     exponential histograms as p50 and p99 from their buckets, summaries
//     as their 0.5 and 0.99 quantiles.
package translate // import "github.com/ebpfflow/ebpfflow/internal/anomaly/translate"

import "github.com/ebpfflow/ebpfflow/internal/anomaly"

// Event and attribute names of the telemetry contract.
const (
	EventFlow    = "network.flow"
	EventDrop    = "network.drop"
	EventDNS     = "dns.lookup"
	EventAnomaly = "anomaly"

	attrEventName = "event.name"

	attrTransport    = "network.transport"
	attrSrcAddr      = "source.address"
	attrSrcPort      = "source.port"
	attrDstAddr      = "destination.address"
	attrDstPort      = "destination.port"
	attrSrcBytes     = "ebpfflow.flow.source.bytes"
	attrDstBytes     = "ebpfflow.flow.destination.bytes"
	attrSrcPackets   = "ebpfflow.flow.source.packets"
	attrDstPackets   = "ebpfflow.flow.destination.packets"
	attrLocalRole    = "ebpfflow.flow.local_role"
	attrRTTMicros    = "ebpfflow.tcp.rtt_us"
	attrRetransmits  = "ebpfflow.tcp.retransmits"
	attrDropReason   = "ebpfflow.drop.reason"
	attrDropCount    = "ebpfflow.drop.count"
	attrDNSRcode     = "ebpfflow.dns.response_code"
	attrDNSDuration  = "ebpfflow.dns.duration_ms"
	attrServerAddr   = "server.address"
	attrServerPort   = "server.port"
	attrPodIP        = "k8s.pod.ip"
	attrHTTPStatus   = "http.response.status_code"
	attrHTTPStatusV0 = "http.status_code"
	attrHTTPMethod   = "http.request.method"
	attrHTTPMethodV0 = "http.method"
	attrPeerService  = "peer.service"
	attrNetPeerName  = "net.peer.name"
	attrPeerAddr     = "network.peer.address"
)

// Signals of the telemetry ebpfflow emits.
var (
	FlowRTT = &anomaly.Signal{Name: EventFlow, Measure: "rtt.p99", Kind: anomaly.Quantile, Quantile: 0.99,
		Unit: "ms", Direction: anomaly.Up}
	FlowTraffic = &anomaly.Signal{Name: EventFlow, Measure: "bytes.rate", Kind: anomaly.Rate,
		Unit: "By/s", Direction: anomaly.Both, LogClock: true, ZeroFill: true, Quantum: 1500}
	FlowRetransmits = &anomaly.Signal{Name: EventFlow, Measure: "retransmit.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	DropRate = &anomaly.Signal{Name: EventDrop, Measure: "drop.rate", Kind: anomaly.Rate,
		Unit: "1/s", Direction: anomaly.Up, LogClock: true, ZeroFill: true, Backfill: true, CountGated: true,
		Quantum: 1}
	DNSTimeouts = &anomaly.Signal{Name: EventDNS, Measure: "timeout.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	DNSErrors = &anomaly.Signal{Name: EventDNS, Measure: "error.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	DNSDuration = &anomaly.Signal{Name: EventDNS, Measure: "duration.p99", Kind: anomaly.Quantile, Quantile: 0.99,
		Unit: "ms", Direction: anomaly.Up}
	HTTPServerDuration = &anomaly.Signal{Name: "http.server", Measure: "duration.p99", Kind: anomaly.Quantile,
		Quantile: 0.99, Unit: "ms", Direction: anomaly.Up}
	HTTPServer5xx = &anomaly.Signal{Name: "http.server", Measure: "5xx.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	HTTPClientDuration = &anomaly.Signal{Name: "http.client", Measure: "duration.p99", Kind: anomaly.Quantile,
		Quantile: 0.99, Unit: "ms", Direction: anomaly.Up}
	HTTPClient5xx = &anomaly.Signal{Name: "http.client", Measure: "5xx.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	// Summary quantiles are values already computed upstream: gauges.
	summaryP50 = &anomaly.Signal{Measure: "p50", Kind: anomaly.Gauge, Direction: anomaly.Both}
	summaryP99 = &anomaly.Signal{Measure: "p99", Kind: anomaly.Gauge, Direction: anomaly.Up}
)
