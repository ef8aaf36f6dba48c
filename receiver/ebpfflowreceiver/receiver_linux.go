//go:build linux

package ebpfflowreceiver // import "github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/clusterview"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/engine"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/metadata"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/pdatabuild"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/procmem"
)

const (
	transport = "ebpf"
	// nodeNameEnv is set from spec.nodeName by the DaemonSet (downward API),
	// the same variable k8sattributes' filter.node_from_env_var reads.
	nodeNameEnv = "K8S_NODE_NAME"
)

type ebpfflowReceiver struct {
	cfg       *Config
	set       receiver.Settings
	obs       *receiverhelper.ObsReport
	telemetry *metadata.TelemetryBuilder

	logs    consumer.Logs
	metrics consumer.Metrics
	traces  consumer.Traces

	// Set by Start. eng is nil before Start and after Shutdown; it is not
	// under mu, so that Shutdown never waits behind a blocked consumer.
	host   component.Host
	ctx    context.Context // cancelled at shutdown to unblock a stuck consumer
	cancel context.CancelFunc
	eng    atomic.Pointer[engine.Node]
	tr     *pdatabuild.Builder
	view   *clusterview.View // nil without kubernetes.enabled

	mu       sync.Mutex      // serialises reports (pdatabuild keeps cumulative state)
	degraded map[string]bool // probes whose failure was reported as status
}

func newReceiver(set receiver.Settings, cfg *Config) (receiverCore, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              transport,
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &ebpfflowReceiver{cfg: cfg, set: set, obs: obs, telemetry: tb, degraded: map[string]bool{}}, nil
}

func (r *ebpfflowReceiver) setLogs(next consumer.Logs)       { r.logs = next }
func (r *ebpfflowReceiver) setMetrics(next consumer.Metrics) { r.metrics = next }
func (r *ebpfflowReceiver) setTraces(next consumer.Traces)   { r.traces = next }

// Start loads and attaches the probes. It fails when the node cannot run
// them at all (privileges, kernel features), with an error that says how to
// fix it; a probe that fails alone degrades the receiver instead (status
// RecoverableError and ebpfflow_probe_up 0) while the others run.
func (r *ebpfflowReceiver) Start(_ context.Context, host component.Host) error {
	engCfg, err := r.cfg.engineConfig()
	if err != nil {
		return err // Validate has run, so this is a programming error
	}
	hostName, err := os.Hostname()
	if err != nil {
		r.set.Logger.Warn("no host name for host.name", zap.Error(err))
	}
	bcfg := r.cfg.builderConfig(r.set.BuildInfo.Version, os.Getenv(nodeNameEnv), hostName)
	if r.cfg.Kubernetes.Enabled {
		client, err := clusterview.NewClient(r.cfg.Kubernetes.AuthType, r.cfg.Kubernetes.Context)
		if err != nil {
			return fmt.Errorf("start ebpfflow receiver: kubernetes: %w", err)
		}
		vcfg := r.cfg.viewConfig()
		vcfg.Client, vcfg.Logger = client, r.set.Logger
		r.view = clusterview.New(vcfg)
		bcfg.Peers = r.view
		if r.cfg.Kubernetes.ServiceBackends {
			engCfg.Services = r.view
		}
	}
	r.host = host
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.tr = pdatabuild.New(time.Now(), bcfg)

	eng := engine.New(engCfg, r.set.Logger, r.consume)
	if err := eng.Start(); err != nil {
		r.cancel()
		return errors.Join(fmt.Errorf("start ebpfflow receiver: %w", err), eng.Close())
	}
	if r.view != nil {
		r.view.Start()
	}
	r.eng.Store(eng)
	if err := r.registerTelemetry(eng.Stats); err != nil {
		return errors.Join(err, r.Shutdown(context.Background()))
	}
	r.mu.Lock()
	r.reportProbes(eng.Stats())
	r.mu.Unlock()
	tuneMemory.Do(func() { r.tuneMemory() })
	return nil
}

// tuneMemory runs once per process: receivers start after every other
// component, so start-up is over by then but for the service's last steps.
var tuneMemory sync.Once

// releaseStartupAfter leaves the service time to finish starting before the
// pages only start-up touched are given back.
const releaseStartupAfter = 2 * time.Second

func (r *ebpfflowReceiver) tuneMemory() {
	_, gc := procmem.TuneGC()
	r.set.Logger.Info("collector memory", zap.String("gc", gc))
	time.AfterFunc(releaseStartupAfter, func() {
		n, err := procmem.ReleaseStartupPages()
		if err != nil {
			r.set.Logger.Info("start-up pages of the executable stay resident", zap.Error(err))
			return
		}
		r.set.Logger.Debug("released start-up pages of the executable", zap.Int("advised_bytes", n))
	})
}

// Shutdown stops the engine and waits for it. It is safe without Start and
// when called twice. If ctx ends first, consumers still blocking the last
// flush are cancelled so that the engine can finish.
func (r *ebpfflowReceiver) Shutdown(ctx context.Context) error {
	r.telemetry.Shutdown()
	eng := r.eng.Swap(nil)
	if eng == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- eng.Close() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		r.cancel()
		err = <-done
	}
	r.cancel()
	if r.view != nil {
		r.view.Close()
	}
	return err
}

// consume is the engine's sink: one report per flush interval, delivered
// from the engine's flush goroutine.
func (r *ebpfflowReceiver) consume(rep observed.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logs != nil {
		// In batches: one batch's records are garbage once consumed.
		for ld := range r.tr.LogBatches(rep, pdatabuild.LogBatch) {
			ctx := r.obs.StartLogsOp(r.ctx)
			err := r.logs.ConsumeLogs(ctx, ld)
			r.obs.EndLogsOp(ctx, transport, ld.LogRecordCount(), err)
		}
	}
	if r.metrics != nil {
		// Called on every report, empty or not: it also ages idle series.
		md := r.tr.Metrics(rep)
		if n := md.DataPointCount(); n > 0 {
			ctx := r.obs.StartMetricsOp(r.ctx)
			err := r.metrics.ConsumeMetrics(ctx, md)
			r.obs.EndMetricsOp(ctx, transport, n, err)
		}
	}
	if r.traces != nil && len(rep.DNS)+len(rep.HTTP) > 0 {
		td := r.tr.Traces(rep)
		ctx := r.obs.StartTracesOp(r.ctx)
		err := r.traces.ConsumeTraces(ctx, td)
		r.obs.EndTracesOp(ctx, transport, td.SpanCount(), err)
	}
	if eng := r.eng.Load(); eng != nil {
		r.reportProbes(eng.Stats())
	}
}

// reportProbes turns probe failures into component status, once per change.
// Callers hold r.mu.
func (r *ebpfflowReceiver) reportProbes(st engine.Stats) {
	var failed []error
	changed := false
	for _, name := range sortedProbes(st) {
		err := st.Probes[name].Err
		if perr, ok := st.Parts[name]; ok {
			err = perr
		}
		if (err != nil) != r.degraded[name] {
			changed = true
			r.degraded[name] = err != nil
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("probe %s: %w", name, err))
		}
	}
	switch {
	case !changed:
	case len(failed) > 0:
		componentstatus.ReportStatus(r.host, componentstatus.NewRecoverableErrorEvent(errors.Join(failed...)))
	default:
		componentstatus.ReportStatus(r.host, componentstatus.NewEvent(componentstatus.StatusOK))
	}
}

// sortedProbes names the probes and their parts that can fail alone.
func sortedProbes(st engine.Stats) []string {
	names := make([]string, 0, len(st.Probes)+len(st.Parts))
	for name := range st.Probes {
		names = append(names, name)
	}
	for name := range st.Parts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Lost-event causes (the `cause` attribute of ebpfflow_events_lost).
const (
	causeRingbufFull = "ring_buffer_full"
	causeMapFull     = "map_full"
	causeParseError  = "parse_error"
	causeDecodeError = "decode_error"
	causeEvicted     = "evicted"          // dns: pending queries / TCP streams forgotten at the limit
	causeUnmatched   = "unmatched_answer" // dns: an answer to no pending query (late, or asked before start)
	causeBufferFull  = "buffer_full"      // http: exchanges dropped, the consumer too slow to take them
)

// registerTelemetry exposes the engine's and translator's counters through
// asynchronous instruments read at each collection of internal telemetry.
func (r *ebpfflowReceiver) registerTelemetry(stats func() engine.Stats) error {
	tb := r.telemetry
	probeAttr := func(name string) metric.ObserveOption {
		return metric.WithAttributes(attribute.String(semconv.SelfAttrProbe, name))
	}
	return errors.Join(
		tb.RegisterEbpfflowEventsCallback(func(_ context.Context, o metric.Int64Observer) error {
			for name, ps := range stats().Probes {
				o.Observe(clamp(ps.Counters.Events), probeAttr(name))
			}
			return nil
		}),
		tb.RegisterEbpfflowEventsLostCallback(func(_ context.Context, o metric.Int64Observer) error {
			st := stats()
			for name, ps := range st.Probes {
				c := ps.Counters
				mapFull, decodeErrors, evicted, unmatched := c.MapFull, c.DecodeErrors, uint64(0), uint64(0)
				switch name {
				case engine.ProbeFlow: // flows the kernel LRU evicted before they were reported
					mapFull += st.Evicted
				case engine.ProbeDNS: // what the matcher could not use
					decodeErrors += st.DNS.Malformed
					evicted = st.DNS.Evicted + st.DNS.StreamsEvicted
					unmatched = st.DNS.UnmatchedAnswers
				}
				observe := func(cause string, n uint64) {
					o.Observe(clamp(n), metric.WithAttributes(attribute.String(semconv.SelfAttrProbe, name), attribute.String(semconv.SelfAttrCause, cause)))
				}
				observe(causeRingbufFull, c.RingbufFull)
				observe(causeMapFull, mapFull)
				observe(causeParseError, c.ParseErrors)
				observe(causeDecodeError, decodeErrors)
				switch name {
				case engine.ProbeDNS:
					observe(causeEvicted, evicted)
					observe(causeUnmatched, unmatched)
				case engine.ProbeHTTP: // what the HTTP matcher could not follow, by its causes
					for cause := httpmatch.CauseNone + 1; int(cause) < httpmatch.NumCauses; cause++ {
						observe(cause.String(), st.HTTP.Lost[cause])
					}
					observe(causeBufferFull, st.HTTP.Dropped)
				}
			}
			return nil
		}),
		tb.RegisterEbpfflowHTTPExchangesCallback(func(_ context.Context, o metric.Int64Observer) error {
			st := stats()
			for oc := range httpmatch.NumOutcomes {
				o.Observe(clamp(st.HTTP.Outcomes[oc]), metric.WithAttributes(attribute.String(semconv.SelfAttrOutcome, httpmatch.Outcome(oc).String())))
			}
			return nil
		}),
		tb.RegisterEbpfflowHTTPInFlightCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(stats().HTTP.InFlight))
			return nil
		}),
		tb.RegisterEbpfflowHTTPConnectionsIgnoredCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(clamp(stats().HTTP.Ignored))
			return nil
		}),
		tb.RegisterEbpfflowDNSPendingCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(stats().DNSPending))
			return nil
		}),
		tb.RegisterEbpfflowFlowsActiveCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(stats().FlowsActive))
			return nil
		}),
		tb.RegisterEbpfflowProbeUpCallback(func(_ context.Context, o metric.Int64Observer) error {
			st := stats()
			for name, ps := range st.Probes {
				o.Observe(up(ps.Err), probeAttr(name))
			}
			for name, err := range st.Parts {
				o.Observe(up(err), probeAttr(name))
			}
			return nil
		}),
		tb.RegisterEbpfflowK8sWatchUpCallback(func(_ context.Context, o metric.Int64Observer) error {
			r.observeByResource(o, func(st *clusterview.Stats, i int) int64 { return b2i(st.Up[i]) })
			return nil
		}),
		tb.RegisterEbpfflowK8sObjectsCallback(func(_ context.Context, o metric.Int64Observer) error {
			r.observeByResource(o, func(st *clusterview.Stats, i int) int64 { return int64(st.Objects[i]) })
			return nil
		}),
		tb.RegisterEbpfflowK8sLookupsCallback(func(_ context.Context, o metric.Int64Observer) error {
			if r.view != nil {
				st := r.view.Stats()
				observeResults(o, []resultCount{{clusterview.ResultResolved, st.Resolved}, {clusterview.ResultUnresolved, st.Unresolved}, {clusterview.ResultExternal, st.External}})
			}
			return nil
		}),
		tb.RegisterEbpfflowServiceBackendLookupsCallback(func(_ context.Context, o metric.Int64Observer) error {
			if r.view != nil && r.cfg.Kubernetes.ServiceBackends {
				b := stats().Backends
				observeResults(o, []resultCount{{"found", b.Found}, {"not_found", b.NotFound}, {"failed", b.Failed}})
			}
			return nil
		}),
		tb.RegisterEbpfflowMetricSeriesCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(r.tr.Series())
			return nil
		}),
		tb.RegisterEbpfflowMetricSeriesEvictedCallback(func(_ context.Context, o metric.Int64Observer) error {
			idle, limit := r.tr.Evicted()
			o.Observe(clamp(idle), metric.WithAttributes(attribute.String(semconv.SelfAttrReason, "idle")))
			o.Observe(clamp(limit), metric.WithAttributes(attribute.String(semconv.SelfAttrReason, "limit")))
			return nil
		}),
	)
}

// observeByResource observes one value per resource the cluster view
// watches (nothing without a view).
func (r *ebpfflowReceiver) observeByResource(o metric.Int64Observer, value func(*clusterview.Stats, int) int64) {
	if r.view == nil {
		return
	}
	st := r.view.Stats()
	for i, res := range clusterview.Resources {
		o.Observe(value(&st, i), metric.WithAttributes(attribute.String(semconv.SelfAttrResource, res)))
	}
}

// resultCount is a counter by the `result` attribute.
type resultCount struct {
	result string
	n      uint64
}

func observeResults(o metric.Int64Observer, counts []resultCount) {
	for _, c := range counts {
		o.Observe(clamp(c.n), metric.WithAttributes(attribute.String(semconv.SelfAttrResult, c.result)))
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func up(err error) int64 {
	if err != nil {
		return 0
	}
	return 1
}

func clamp(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}
