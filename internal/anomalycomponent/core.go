package anomalycomponent

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
)

// Core is the engine of one anomaly_detection component ID. All the
// pipelines of a processor or connector share it (internal/sharedcomponent),
// so an edge's signals from logs, metrics and traces are judged and grouped
// together; batches are judged one at a time, under a lock. Each call
// returns the alerts of its batch (a copy). Start registers its
// self-telemetry, Shutdown unregisters it.
type Core struct {
	scopeName, version string
	tb                 TelemetryBuilder

	mu sync.Mutex
	e  *anomaly.Engine
	x  *Extractor
}

// NewCore returns a core over a new engine for cfg. Its anomaly records
// carry the instrumentation scope scopeName at version.
func NewCore(cfg anomaly.Config, tb TelemetryBuilder, scopeName, version string) (*Core, error) {
	e, err := anomaly.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Core{scopeName: scopeName, version: version, tb: tb, e: e, x: NewExtractor(e)}, nil
}

// Start registers the engine's self-telemetry.
func (c *Core) Start(context.Context, component.Host) error {
	return registerTelemetry(c.tb, c.e.Stats())
}

// Shutdown unregisters the self-telemetry callbacks.
func (c *Core) Shutdown(context.Context) error {
	c.tb.Shutdown()
	return nil
}

// Stats returns the engine's counters (safe to read concurrently).
func (c *Core) Stats() *anomaly.Stats { return c.e.Stats() }

// Logs observes a logs batch.
func (c *Core) Logs(now time.Time, ld plog.Logs) []anomaly.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.e.Begin(now)
	c.x.Logs(ld)
	return copyAlerts(c.e.Done())
}

// Metrics observes a metrics batch.
func (c *Core) Metrics(now time.Time, md pmetric.Metrics) []anomaly.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.e.Begin(now)
	c.x.Metrics(md)
	return copyAlerts(c.e.Done())
}

// Traces observes a traces batch.
func (c *Core) Traces(now time.Time, td ptrace.Traces) []anomaly.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.e.Begin(now)
	c.x.Traces(td)
	return copyAlerts(c.e.Done())
}

// AppendAlerts appends the alerts to ld as anomaly records of this
// component (see the package function AppendAlerts).
func (c *Core) AppendAlerts(ld plog.Logs, alerts []anomaly.Alert, observed time.Time) {
	AppendAlerts(ld, alerts, c.scopeName, c.version, observed)
}

func copyAlerts(a []anomaly.Alert) []anomaly.Alert {
	if len(a) == 0 {
		return nil
	}
	return append([]anomaly.Alert(nil), a...)
}
