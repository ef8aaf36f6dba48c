// Package anomalycomponent is what the anomaly_detection processor and
// connector share: the Extractor maps pdata to the anomaly engine's
// observations, AppendAlerts turns the engine's alerts into `anomaly` log
// records (names from internal/semconv; the contract is docs/telemetry.md),
// and Core is one component ID's engine, judged one batch at a time and
// reporting its self-telemetry. The engine itself (internal/anomaly)
// imports no collector package; this package is the adapter around it.
//
// Series extracted:
//
//   - network.flow, per edge (source → destination:port, transport; a side
//     is named by its k8s workload or service where the record or, for the
//     local side, the resource says so, else by its address): p99 of
//     ebpfflow.tcp.rtt (in ms); traffic (bytes both ways per second, each
//     connection counted once when both ends are on this node); TCP
//     retransmitted segments over segments sent, gated on volume.
//   - network.drop, per drop reason and edge: drops per second; a window
//     without drop records is a zero, and a rise needs min_count drops.
//   - dns.lookup, per resolver (server.address): the ratio of TIMEOUT
//     answers and of errors other than NXDOMAIN, gated on volume; p99 of
//     ebpfflow.dns.duration (in ms) of answered queries.
//   - HTTP spans (kind SERVER or CLIENT with HTTP attributes), per service
//     and, for clients, peer (server.address:server.port): p99 duration
//     (ms) and the 5xx ratio, gated on volume.
//   - Metrics, per metric and identifying attributes (resource and point
//     attributes except Config.ExcludeAttributes): monotonic sums as rates
//     per second (cumulative ones per original stream with reset handling,
//     then summed), gauges and non-monotonic sums as values, histograms and
//     exponential histograms as p50 and p99 from their buckets, summaries
//     as their 0.5 and 0.99 quantiles.
package anomalycomponent

import (
	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/semconv"
)

// Signal names of HTTP spans, which have no event name of their own.
const (
	signalHTTPServer = "http.server"
	signalHTTPClient = "http.client"
)

// Signals of the telemetry ebpfflow emits. Name is ebpfflow.anomaly.signal, Measure ebpfflow.anomaly.measure.
var (
	FlowRTT = &anomaly.Signal{Name: semconv.EventFlow, Measure: "rtt.p99", Kind: anomaly.Quantile, Quantile: 0.99,
		Unit: "ms", Direction: anomaly.Up}
	FlowTraffic = &anomaly.Signal{Name: semconv.EventFlow, Measure: "bytes.rate", Kind: anomaly.Rate,
		Unit: "By/s", Direction: anomaly.Both, LogClock: true, ZeroFill: true, Quantum: 1500}
	FlowRetransmits = &anomaly.Signal{Name: semconv.EventFlow, Measure: "retransmit.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	DropRate = &anomaly.Signal{Name: semconv.EventDrop, Measure: "drop.rate", Kind: anomaly.Rate,
		Unit: "1/s", Direction: anomaly.Up, LogClock: true, ZeroFill: true, Backfill: true, CountGated: true,
		Quantum: 1}
	DNSTimeouts = &anomaly.Signal{Name: semconv.EventDNS, Measure: "timeout.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	DNSErrors = &anomaly.Signal{Name: semconv.EventDNS, Measure: "error.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	DNSDuration = &anomaly.Signal{Name: semconv.EventDNS, Measure: "duration.p99", Kind: anomaly.Quantile, Quantile: 0.99,
		Unit: "ms", Direction: anomaly.Up}
	HTTPServerDuration = &anomaly.Signal{Name: signalHTTPServer, Measure: "duration.p99", Kind: anomaly.Quantile,
		Quantile: 0.99, Unit: "ms", Direction: anomaly.Up}
	HTTPServer5xx = &anomaly.Signal{Name: signalHTTPServer, Measure: "5xx.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	HTTPClientDuration = &anomaly.Signal{Name: signalHTTPClient, Measure: "duration.p99", Kind: anomaly.Quantile,
		Quantile: 0.99, Unit: "ms", Direction: anomaly.Up}
	HTTPClient5xx = &anomaly.Signal{Name: signalHTTPClient, Measure: "5xx.ratio", Kind: anomaly.Ratio,
		Unit: "1", Direction: anomaly.Up, CountGated: true}
	// Summary quantiles are values already computed upstream: gauges.
	summaryP50 = &anomaly.Signal{Measure: "p50", Kind: anomaly.Gauge, Direction: anomaly.Both}
	summaryP99 = &anomaly.Signal{Measure: "p99", Kind: anomaly.Gauge, Direction: anomaly.Up}
)
