// Package anomalydetectionprocessor is the anomaly_detection processor: it
// learns what is normal per series of the telemetry passing through (flow
// edges, drop reasons, DNS resolvers, HTTP peers, metric streams) and
// appends an `anomaly` log record when a series departs from it, and
// another when it returns.
//
// The processor is a thin adapter over internal/anomaly (the engine) and
// internal/anomalycomponent (pdata in, anomaly records out, self-telemetry),
// both shared with the anomaly_detection connector. It passes every signal through
// unchanged; only in a logs pipeline can it add records. Anomalies it finds
// in metrics or traces are emitted in the logs pipeline of the same
// processor if there is one, else counted as suppressed
// (cause="no_logs_pipeline"): use the connector to turn metrics or traces
// into anomaly logs.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package anomalydetectionprocessor // import "github.com/ebpfflow/ebpfflow/processor/anomalydetectionprocessor"
