package anomaly

// Kind says how the points of a window become the one value scored.
type Kind uint8

const (
	// Gauge: the mean of the window's values.
	Gauge Kind = iota + 1
	// Rate: the sum of the window's increments divided by the time they
	// cover, per second.
	Rate
	// Ratio: the sum of numerators over the sum of denominators; a window
	// whose denominator is below Config.MinCount is not scored.
	Ratio
	// Quantile: the Signal.Quantile of the window's samples or histogram
	// buckets.
	Quantile
)

// Direction says which changes are worth an alert.
type Direction uint8

const (
	// Both: a rise or a fall (traffic that stops is as news-worthy as a
	// flood).
	Both Direction = iota
	// Up: only a rise (latency, errors, drops); a fall is an improvement.
	Up
)

// Signal is a static description of one kind of series: what is measured,
// how a window is aggregated and how it is worded. Signals for the
// telemetry ebpfflow emits are defined by internal/anomalycomponent; generic
// metrics use MetricRate, MetricGauge, MetricP50 and MetricP99.
type Signal struct {
	// Name is the source metric or event name (ebpfflow.anomaly.signal);
	// empty for generic metrics, whose series name it themselves.
	Name string
	// Measure names what is derived from it (ebpfflow.anomaly.measure):
	// "rtt.p99", "bytes.rate", "timeout.ratio", "p99", "rate", …
	Measure string
	Kind    Kind
	// Quantile in (0,1) for Kind Quantile.
	Quantile float64
	// Unit of the values: "ms", "By/s", "1/s", "1" (ratio). Generic metrics
	// carry their own (Identity.Unit).
	Unit      string
	Direction Direction
	// LogClock: increments come from events without an interval of their
	// own (log records), so a window's rate divides by the time between
	// consecutive windows' last event times, engine-wide.
	LogClock bool
	// ZeroFill: a window in which the engine had log data but this series
	// had none is a zero (no flow record: no bytes; no drop record: no
	// drops). For LogClock rates only.
	ZeroFill bool
	// Backfill: a new series starts from a history of zeros as long as the
	// engine has been watching (bounded by the detector's warm-up), so its
	// first events are judged against the quiet before them. Only for
	// events whose absence is known (drops); a new edge's traffic is not
	// news.
	Backfill bool
	// CountGated: a rise is reported only with at least Config.MinCount
	// events in the window (drops; a ratio's numerator: timeouts, 5xx,
	// retransmissions), so a handful of events pages nobody however rare.
	CountGated bool
	// Quantum is the size of one event of a Rate, in the unit before
	// division by time (1 drop, 1500 bytes): the detector's resolution is
	// one quantum per window, so the first events after a quiet spell are
	// judged by how many they are. Ratios always use one event (1/den).
	Quantum float64
}

// Signals for generic metrics.
var (
	MetricRate  = &Signal{Measure: "rate", Kind: Rate, Direction: Both, Quantum: 1}
	MetricGauge = &Signal{Measure: "value", Kind: Gauge, Direction: Both}
	MetricP50   = &Signal{Measure: "p50", Kind: Quantile, Quantile: 0.5, Direction: Both}
	MetricP99   = &Signal{Measure: "p99", Kind: Quantile, Quantile: 0.99, Direction: Up}
)

// Family separates the namespaces of edges.
type Family uint8

const (
	// FamilyNetwork: source → destination:port (flows, drops).
	FamilyNetwork Family = iota + 1
	// FamilyDNS: a resolver.
	FamilyDNS
	// FamilyHTTP: a service and its peer.
	FamilyHTTP
	// FamilyMetric: the attributes of a metric stream.
	FamilyMetric
)

// EdgeKey identifies what alerts are grouped by: one alert per edge per
// quiet period, whatever number of its signals fire.
type EdgeKey struct {
	Family  Family
	A, B, C string
	N       int64
	H       uint64
}

// Key identifies a series: a signal on an edge, plus Sub to tell apart
// several series of one signal on one edge (a drop reason, a metric name).
// It is comparable and built without allocation from attribute values.
type Key struct {
	Signal *Signal
	Edge   EdgeKey
	Sub    string
}

// Attr is one identifying attribute of a series, for the anomaly record.
type Attr struct {
	Key   string
	Value string
	Int   int64
	IsInt bool
}

// Identity describes a series for people and automation. It is asked for
// once, when the series is created.
type Identity struct {
	// Subject is the series in words, completed by the sentence:
	// "p99 RTT checkout → payments:8080", "DNS timeouts at resolver 10.0.0.10".
	Subject string
	// What is the measure alone ("bytes rate", "DNS timeouts"), for the
	// other signals listed in a grouped alert; empty: Subject.
	What string
	// Edge in words: "checkout → payments:8080", "resolver 10.0.0.10".
	Edge string
	// Attrs are the identifying attributes (ebpfflow.anomaly.series).
	Attrs []Attr
	// Signal and Unit override the Signal's (generic metrics).
	Signal, Unit string
}
