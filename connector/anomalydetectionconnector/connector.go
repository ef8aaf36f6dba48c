package anomalydetectionconnector // import "github.com/ebpfflow/ebpfflow/connector/anomalydetectionconnector"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/connector/anomalydetectionconnector/internal/metadata"
	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/anomalycomponent"
	"github.com/ebpfflow/ebpfflow/internal/sharedcomponent"
)

// cores holds one engine per connector ID across its metrics_to_logs,
// traces_to_logs and logs_to_logs instances (one per pair of pipeline
// signals, all created from the same *Config): an edge's signals from
// metrics, traces and logs are judged and grouped together. Alerts go to the
// logs pipelines of the instance whose input completed them, so give every
// instance the same logs pipelines.
var cores = sharedcomponent.NewMap[*Config, *anomalycomponent.Core]()

// anomalyConnector consumes metrics, traces or logs and emits only anomaly
// records, into its logs pipelines.
type anomalyConnector struct {
	*sharedcomponent.Component[*anomalycomponent.Core]
	next consumer.Logs
}

var (
	_ connector.Metrics = (*anomalyConnector)(nil)
	_ connector.Traces  = (*anomalyConnector)(nil)
	_ connector.Logs    = (*anomalyConnector)(nil)
)

func newConnector(set connector.Settings, cfg *Config, next consumer.Logs) (*anomalyConnector, error) {
	c, err := cores.LoadOrStore(cfg, func() (*anomalycomponent.Core, error) {
		tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
		if err != nil {
			return nil, err
		}
		return anomalycomponent.NewCore(cfg.Config, tb, metadata.ScopeName, set.BuildInfo.Version)
	})
	if err != nil {
		return nil, err
	}
	return &anomalyConnector{Component: c, next: next}, nil
}

func (a *anomalyConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (a *anomalyConnector) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	now := time.Now()
	return a.emit(ctx, now, a.Unwrap().Metrics(now, md))
}

func (a *anomalyConnector) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	now := time.Now()
	return a.emit(ctx, now, a.Unwrap().Traces(now, td))
}

func (a *anomalyConnector) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	now := time.Now()
	return a.emit(ctx, now, a.Unwrap().Logs(now, ld))
}

// emit sends the batch's anomaly records downstream. A downstream error is
// returned to the sender; the alerts are not retried (the engine has moved
// on), which the pipeline's own retry and queue settings account for.
func (a *anomalyConnector) emit(ctx context.Context, now time.Time, alerts []anomaly.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	ld := plog.NewLogs()
	a.Unwrap().AppendAlerts(ld, alerts, now)
	return a.next.ConsumeLogs(ctx, ld)
}
