// Package anomalydetectionconnector is the anomaly_detection connector: it
// learns what is normal per series of the metrics, traces or logs it
// consumes (flow edges, drop reasons, DNS resolvers, HTTP peers, metric
// streams) and emits an `anomaly` log record into its logs pipelines when a
// series departs from it, and another when it returns. A processor can only
// emit the signal it receives; this connector is how metrics and traces
// become anomaly logs (metrics_to_logs, traces_to_logs), and logs_to_logs
// emits the anomaly records alone, without the input.
//
// The connector is a thin adapter over internal/anomaly (the engine) and
// internal/anomalycomponent (pdata in, anomaly records out, self-telemetry),
// both shared with the anomaly_detection processor.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package anomalydetectionconnector // import "github.com/ebpfflow/ebpfflow/connector/anomalydetectionconnector"
