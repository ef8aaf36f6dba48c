package anomalydetectionprocessor // import "github.com/ebpfflow/ebpfflow/processor/anomalydetectionprocessor"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/anomalycomponent"
	"github.com/ebpfflow/ebpfflow/internal/sharedcomponent"
	"github.com/ebpfflow/ebpfflow/processor/anomalydetectionprocessor/internal/metadata"
)

// maxOutbox bounds the alerts found in metrics or traces that wait for the
// next logs batch (the rate limit keeps it far below in practice).
const maxOutbox = 1000

// core is one processor ID's engine, shared by its pipelines: the
// collector creates one processor per pipeline, all from the same *Config.
// Alerts found in metrics or traces wait in the outbox for the next logs
// batch.
type core struct {
	*anomalycomponent.Core

	mu     sync.Mutex
	logs   bool // an instance is in a logs pipeline
	outbox []anomaly.Alert
}

// cores holds one engine per processor ID across its pipelines.
var cores = sharedcomponent.NewMap[*Config, *core]()

// instance is the processor of one pipeline.
type instance struct {
	*sharedcomponent.Component[*core]
}

func newInstance(set processor.Settings, cfg *Config, logs bool) (*instance, error) {
	sc, err := cores.LoadOrStore(cfg, func() (*core, error) {
		tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
		if err != nil {
			return nil, err
		}
		c, err := anomalycomponent.NewCore(cfg.Config, tb, metadata.ScopeName, set.BuildInfo.Version)
		if err != nil {
			return nil, err
		}
		return &core{Core: c}, nil
	})
	if err != nil {
		return nil, err
	}
	if logs {
		c := sc.Unwrap()
		c.mu.Lock()
		c.logs = true
		c.mu.Unlock()
	}
	return &instance{Component: sc}, nil
}

// stash keeps alerts found in metrics or traces for the next logs batch,
// or counts them when this processor is in no logs pipeline.
func (c *core) stash(alerts []anomaly.Alert) {
	if len(alerts) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	room := maxOutbox - len(c.outbox)
	if !c.logs {
		room = 0
	}
	n := min(room, len(alerts))
	c.outbox = append(c.outbox, alerts[:n]...)
	if lost := len(alerts) - n; lost > 0 {
		c.Stats().CountSuppressed(anomaly.CauseNoLogsPipeline, lost)
	}
}

func (c *core) drain() []anomaly.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.outbox
	c.outbox = nil
	return out
}

// processLogs learns from the batch and appends the anomaly records found
// (in it, or in this processor's metrics and traces since the last batch).
func (p *instance) processLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	c := p.Unwrap()
	now := time.Now()
	alerts := c.Logs(now, ld)
	if pending := c.drain(); len(pending) > 0 {
		alerts = append(pending, alerts...)
	}
	c.AppendAlerts(ld, alerts, now)
	return ld, nil
}

// processMetrics learns from the batch and passes it on unchanged.
func (p *instance) processMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	c := p.Unwrap()
	c.stash(c.Metrics(time.Now(), md))
	return md, nil
}

// processTraces learns from the batch and passes it on unchanged.
func (p *instance) processTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	c := p.Unwrap()
	c.stash(c.Traces(time.Now(), td))
	return td, nil
}
