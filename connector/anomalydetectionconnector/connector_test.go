package anomalydetectionconnector

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/connector/anomalydetectionconnector/internal/metadata"
)

func testConfig() *Config {
	cfg := createDefaultConfig()
	cfg.Detector.Warmup = 20
	cfg.Detector.ResolveAfter = 5
	cfg.ConfirmWindows = 1
	return cfg
}

var base = time.Now().Add(-3 * time.Hour).Truncate(10 * time.Second)

func at(i int) time.Time { return base.Add(time.Duration(i)*10*time.Second + 5*time.Second) }

// histMetrics is one cumulative point of http.server.request.duration
// (seconds) for service payments: n more requests since the last one, at
// latency lat.
type histStream struct {
	counts []uint64
}

func (h *histStream) point(ts time.Time, n uint64, lat float64) pmetric.Metrics {
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
	if h.counts == nil {
		h.counts = make([]uint64, len(bounds)+1)
	}
	i := 0
	for i < len(bounds) && lat > bounds[i] {
		i++
	}
	h.counts[i] += n
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "payments")
	rm.Resource().Attributes().PutStr("service.instance.id", "i-1")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.request.duration")
	m.SetUnit("s")
	hist := m.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := hist.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(base))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(h.counts)
	dp.Attributes().PutStr("http.request.method", "GET")
	return md
}

func spans(ts time.Time, ms float64, errors int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for r := range 40 {
		sp := ss.AppendEmpty()
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetName("POST")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(ts.Add(-time.Duration(ms * float64(time.Millisecond)))))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(ts))
		sp.Attributes().PutStr("http.request.method", "POST")
		code := int64(200)
		if r < errors {
			code = 500
		}
		sp.Attributes().PutInt("http.response.status_code", code)
		sp.Attributes().PutStr("server.address", "payments")
		sp.Attributes().PutInt("server.port", 8080)
	}
	return td
}

func bodies(sink *consumertest.LogsSink) []string {
	var out []string
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				if sls.At(j).Scope().Name() != metadata.ScopeName {
					panic("scope " + sls.At(j).Scope().Name())
				}
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, lrs.At(k).Body().Str())
				}
			}
		}
	}
	return out
}

func TestMetricsToLogs(t *testing.T) {
	sink := new(consumertest.LogsSink)
	c, err := NewFactory().CreateMetricsToLogs(context.Background(), connectortest.NewNopSettings(metadata.Type), testConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, c.Shutdown(context.Background())) }()
	var h histStream
	i := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for ; i < 80; i++ {
		require.NoError(t, c.ConsumeMetrics(context.Background(), h.point(at(i), 100, 0.003+0.004*rng.Float64())))
	}
	assert.Zero(t, sink.LogRecordCount(), "steady state: no alert")
	for ; i < 83; i++ {
		require.NoError(t, c.ConsumeMetrics(context.Background(), h.point(at(i), 100, 0.4)))
	}
	got := bodies(sink)
	require.NotEmpty(t, got)
	assert.Regexp(t, `^p\d\d http\.server\.request\.duration for payments \{http\.request\.method=GET\} rose from [\d.]+ ms to [\d.]+ ms`, got[0])
	t.Log(got)
}

func TestTracesToLogs(t *testing.T) {
	sink := new(consumertest.LogsSink)
	c, err := NewFactory().CreateTracesToLogs(context.Background(), connectortest.NewNopSettings(metadata.Type), testConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, c.Shutdown(context.Background())) }()
	rng := rand.New(rand.NewPCG(1, 2))
	i := 0
	for ; i < 80; i++ {
		require.NoError(t, c.ConsumeTraces(context.Background(), spans(at(i), 12+rng.Float64(), 0)))
	}
	for ; i < 83; i++ {
		require.NoError(t, c.ConsumeTraces(context.Background(), spans(at(i), 12+rng.Float64(), 30)))
	}
	got := bodies(sink)
	require.Len(t, got, 1)
	assert.Equal(t, "HTTP 5xx ratio checkout → payments:8080 rose from 0% to 75%", got[0])
}

// logs_to_logs emits the anomaly records only, not its input; the
// instances of one connector share one engine.
func TestLogsToLogsSharesEngine(t *testing.T) {
	cfg := testConfig()
	set := connectortest.NewNopSettings(metadata.Type)
	logsSink, traceSink := new(consumertest.LogsSink), new(consumertest.LogsSink)
	l, err := NewFactory().CreateLogsToLogs(context.Background(), set, cfg, logsSink)
	require.NoError(t, err)
	tr, err := NewFactory().CreateTracesToLogs(context.Background(), set, cfg, traceSink)
	require.NoError(t, err)
	require.Same(t, l.(*anomalyConnector).Unwrap(), tr.(*anomalyConnector).Unwrap())
	require.NoError(t, l.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, tr.Start(context.Background(), componenttest.NewNopHost()))
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("not a flow")
	require.NoError(t, l.ConsumeLogs(context.Background(), ld))
	assert.Zero(t, logsSink.LogRecordCount(), "input is not forwarded")
	require.NoError(t, l.Shutdown(context.Background()))
	require.NoError(t, tr.Shutdown(context.Background()))
	assert.Zero(t, cores.Len(), "released")
}
