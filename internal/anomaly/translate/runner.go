package translate

import (
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
)

// Runner serialises the batches of one component over one engine: all the
// pipelines of one anomaly_detection processor or connector share it, so
// an edge's signals from logs, metrics and traces are judged and grouped
// together. Each call returns the alerts of its batch (a copy).
type Runner struct {
	mu sync.Mutex
	e  *anomaly.Engine
	tr *Translator
}

// NewRunner returns a runner over a new engine for cfg.
func NewRunner(cfg anomaly.Config) (*Runner, error) {
	e, err := anomaly.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Runner{e: e, tr: New(e)}, nil
}

// Stats returns the engine's counters (safe to read concurrently).
func (r *Runner) Stats() *anomaly.Stats { return r.e.Stats() }

// Logs observes a logs batch.
func (r *Runner) Logs(now time.Time, ld plog.Logs) []anomaly.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.e.Begin(now)
	r.tr.Logs(ld)
	return copyAlerts(r.e.Done())
}

// Metrics observes a metrics batch.
func (r *Runner) Metrics(now time.Time, md pmetric.Metrics) []anomaly.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.e.Begin(now)
	r.tr.Metrics(md)
	return copyAlerts(r.e.Done())
}

// Traces observes a traces batch.
func (r *Runner) Traces(now time.Time, td ptrace.Traces) []anomaly.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.e.Begin(now)
	r.tr.Traces(td)
	return copyAlerts(r.e.Done())
}

func copyAlerts(a []anomaly.Alert) []anomaly.Alert {
	if len(a) == 0 {
		return nil
	}
	return append([]anomaly.Alert(nil), a...)
}
