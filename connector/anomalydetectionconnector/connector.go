package anomalydetectionconnector // import "github.com/ebpfflow/ebpfflow/connector/anomalydetectionconnector"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/connector/anomalydetectionconnector/internal/metadata"
	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/anomaly/translate"
)

// core is one connector ID's engine, shared by its instances (one per
// pair of pipeline signals, all created from the same *Config): an edge's
// signals from metrics, traces and logs are judged and grouped together.
// Alerts go to the logs pipelines of the instance whose input completed
// them, so give every instance the same logs pipelines.
type core struct {
	runner  *translate.Runner
	tb      *metadata.TelemetryBuilder
	version string

	mu      sync.Mutex
	refs    int
	started int
}

type coreRegistry struct {
	mu sync.Mutex
	m  map[*Config]*core
}

func newCoreRegistry() *coreRegistry { return &coreRegistry{m: make(map[*Config]*core)} }

func (r *coreRegistry) acquire(set connector.Settings, cfg *Config) (*core, error) {
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
	c.mu.Unlock()
	return c, nil
}

func (r *coreRegistry) release(cfg *Config, c *core, started bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refs--
	if started {
		c.started--
		if c.started == 0 {
			c.tb.Shutdown()
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

// anomalyConnector consumes metrics, traces or logs and emits only anomaly
// records, into its logs pipelines.
type anomalyConnector struct {
	cfg     *Config
	c       *core
	next    consumer.Logs
	started bool
	once    sync.Once
}

var (
	_ connector.Metrics = (*anomalyConnector)(nil)
	_ connector.Traces  = (*anomalyConnector)(nil)
	_ connector.Logs    = (*anomalyConnector)(nil)
)

func newConnector(set connector.Settings, cfg *Config, next consumer.Logs) (*anomalyConnector, error) {
	c, err := cores.acquire(set, cfg)
	if err != nil {
		return nil, err
	}
	return &anomalyConnector{cfg: cfg, c: c, next: next}, nil
}

func (a *anomalyConnector) Start(context.Context, component.Host) error {
	if err := a.c.start(); err != nil {
		return err
	}
	a.started = true
	return nil
}

func (a *anomalyConnector) Shutdown(context.Context) error {
	a.once.Do(func() { cores.release(a.cfg, a.c, a.started) })
	return nil
}

func (a *anomalyConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (a *anomalyConnector) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	now := time.Now()
	return a.emit(ctx, now, a.c.runner.Metrics(now, md))
}

func (a *anomalyConnector) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	now := time.Now()
	return a.emit(ctx, now, a.c.runner.Traces(now, td))
}

func (a *anomalyConnector) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	now := time.Now()
	return a.emit(ctx, now, a.c.runner.Logs(now, ld))
}

// emit sends the batch's anomaly records downstream. A downstream error is
// returned to the sender; the alerts are not retried (the engine has moved
// on), which the pipeline's own retry and queue settings account for.
func (a *anomalyConnector) emit(ctx context.Context, now time.Time, alerts []anomaly.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	ld := plog.NewLogs()
	translate.AppendAlerts(ld, alerts, metadata.ScopeName, a.c.version, now)
	return a.next.ConsumeLogs(ctx, ld)
}
