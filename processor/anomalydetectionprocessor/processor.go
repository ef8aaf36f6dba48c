package anomalydetectionprocessor // import "github.com/ebpfflow/ebpfflow/processor/anomalydetectionprocessor"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/anomaly/translate"
	"github.com/ebpfflow/ebpfflow/processor/anomalydetectionprocessor/internal/metadata"
)

// maxOutbox bounds the alerts found in metrics or traces that wait for the
// next logs batch (the rate limit keeps it far below in practice).
const maxOutbox = 1000

// core is one processor ID's engine, shared by its pipelines: the
// collector creates one processor per pipeline, all from the same *Config.
type core struct {
	runner  *translate.Runner
	tb      *metadata.TelemetryBuilder
	version string

	mu      sync.Mutex
	refs    int // instances created and not shut down
	started int // instances started and not shut down
	logs    int // logs instances among refs
	outbox  []anomaly.Alert
}

type coreRegistry struct {
	mu sync.Mutex
	m  map[*Config]*core
}

func newCoreRegistry() *coreRegistry { return &coreRegistry{m: make(map[*Config]*core)} }

func (r *coreRegistry) acquire(set processor.Settings, cfg *Config, logs bool) (*core, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.m[cfg]
	if !ok {
		runner, err := translate.NewRunner(cfg.Config)
		if err != nil {
			return nil, err
		}
		tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
		if err != nil {
			return nil, err
		}
		c = &core{runner: runner, tb: tb, version: set.BuildInfo.Version}
		r.m[cfg] = c
	}
	c.mu.Lock()
	c.refs++
	if logs {
		c.logs++
	}
	c.mu.Unlock()
	return c, nil
}

func (r *coreRegistry) release(cfg *Config, c *core, logs, started bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refs--
	if logs {
		c.logs--
	}
	if started {
		c.started--
		if c.started == 0 {
			c.tb.Shutdown() // unregisters the callbacks
		}
	}
	if c.refs == 0 {
		delete(r.m, cfg)
	}
}

func (c *core) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started++
	if c.started > 1 {
		return nil
	}
	return registerTelemetry(c.tb, c.runner.Stats())
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
	if c.logs == 0 {
		room = 0
	}
	n := min(room, len(alerts))
	c.outbox = append(c.outbox, alerts[:n]...)
	if lost := len(alerts) - n; lost > 0 {
		c.runner.Stats().CountSuppressed(anomaly.CauseNoLogsPipeline, lost)
	}
}

func (c *core) drain() []anomaly.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.outbox
	c.outbox = nil
	return out
}

// instance is the processor of one pipeline.
type instance struct {
	cfg      *Config
	c        *core
	logs     bool
	started  bool
	shutdown func(context.Context) error
}

func newInstance(set processor.Settings, cfg *Config, logs bool) (*instance, error) {
	c, err := cores.acquire(set, cfg, logs)
	if err != nil {
		return nil, err
	}
	p := &instance{cfg: cfg, c: c, logs: logs}
	var once sync.Once
	p.shutdown = func(context.Context) error {
		once.Do(func() { cores.release(p.cfg, p.c, p.logs, p.started) })
		return nil
	}
	return p, nil
}

func (p *instance) start(context.Context, component.Host) error {
	if err := p.c.start(); err != nil {
		return err
	}
	p.started = true
	return nil
}

// processLogs learns from the batch and appends the anomaly records found
// (in it, or in this processor's metrics and traces since the last batch).
func (p *instance) processLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	now := time.Now()
	alerts := p.c.runner.Logs(now, ld)
	if pending := p.c.drain(); len(pending) > 0 {
		alerts = append(pending, alerts...)
	}
	translate.AppendAlerts(ld, alerts, metadata.ScopeName, p.c.version, now)
	return ld, nil
}

// processMetrics learns from the batch and passes it on unchanged.
func (p *instance) processMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	p.c.stash(p.c.runner.Metrics(time.Now(), md))
	return md, nil
}

// processTraces learns from the batch and passes it on unchanged.
func (p *instance) processTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	p.c.stash(p.c.runner.Traces(time.Now(), td))
	return td, nil
}
