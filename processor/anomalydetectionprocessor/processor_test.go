package anomalydetectionprocessor

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/ebpfflow/ebpfflow/processor/anomalydetectionprocessor/internal/metadata"
	"github.com/ebpfflow/ebpfflow/processor/anomalydetectionprocessor/internal/metadatatest"
)

// testConfig: a short warm-up, alerts on the first anomalous window.
func testConfig() *Config {
	cfg := createDefaultConfig()
	cfg.Detector.Warmup = 20
	cfg.Detector.ResolveAfter = 5
	cfg.ConfirmWindows = 1
	return cfg
}

// base is a window boundary in the recent past: event times stay behind
// the processing time (time.Now) the processor judges them by.
var base = time.Now().Add(-3 * time.Hour).Truncate(10 * time.Second)

func at(i int) time.Time { return base.Add(time.Duration(i)*10*time.Second + 5*time.Second) }

// flowLogs is one receiver flush: a network.flow record of a → b:8080 with
// the given RTT, plus a record the processor does not use.
func flowLogs(ts time.Time, rttMicros int64) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.pod.ip", "10.0.0.1")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	lr := lrs.AppendEmpty()
	lr.SetEventName("network.flow")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	a := lr.Attributes()
	a.PutStr("network.transport", "tcp")
	a.PutStr("source.address", "10.0.0.1")
	a.PutInt("source.port", 41000)
	a.PutStr("destination.address", "10.0.0.2")
	a.PutInt("destination.port", 8080)
	a.PutStr("ebpfflow.flow.local_role", "client")
	a.PutInt("ebpfflow.flow.source.bytes", 5000) // requests: the client sends data, so its RTT is fresh
	a.PutInt("ebpfflow.flow.destination.bytes", 50000)
	a.PutInt("ebpfflow.flow.source.packets", 20)
	a.PutInt("ebpfflow.flow.destination.packets", 40)
	a.PutDouble("ebpfflow.tcp.rtt", float64(rttMicros)/1e6)
	a.PutInt("ebpfflow.tcp.retransmits", 0)
	other := lrs.AppendEmpty()
	other.Body().SetStr("an application log line")
	return ld
}

// gaugeMetrics is one point of a gauge "queue.depth" of service checkout.
func gaugeMetrics(ts time.Time, v float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("queue.depth")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	dp.SetDoubleValue(v)
	return md
}

// anomalies returns the anomaly records of ld.
func anomalies(ld plog.Logs) []plog.LogRecord {
	var out []plog.LogRecord
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if lr := lrs.At(k); lr.EventName() == "anomaly" {
					out = append(out, lr)
				}
			}
		}
	}
	return out
}

func newLogs(t *testing.T, set processor.Settings, cfg *Config, next *consumertest.LogsSink) processor.Logs {
	t.Helper()
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

// In a logs pipeline the processor passes the batch on and appends the
// anomaly records to it.
func TestLogsPipelineAppendsAnomalies(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newLogs(t, processortest.NewNopSettings(metadata.Type), testConfig(), sink)
	rng := rand.New(rand.NewPCG(1, 2))
	i := 0
	for ; i < 80; i++ {
		require.NoError(t, p.ConsumeLogs(context.Background(), flowLogs(at(i), int64(200+rng.IntN(20)))))
	}
	for ; i < 83; i++ {
		require.NoError(t, p.ConsumeLogs(context.Background(), flowLogs(at(i), 25000)))
	}
	var found []plog.LogRecord
	for n, ld := range sink.AllLogs() {
		assert.GreaterOrEqual(t, ld.LogRecordCount(), 2, "the input passes through (batch %d)", n)
		found = append(found, anomalies(ld)...)
	}
	require.Len(t, found, 1)
	lr := found[0]
	assert.Regexp(t, `^p99 RTT 10\.0\.0\.1 → 10\.0\.0\.2:8080 rose from 0\.2\d* ms to 25 ms$`, lr.Body().Str())
	state, _ := lr.Attributes().Get("ebpfflow.anomaly.state")
	assert.Equal(t, "firing", state.Str())
	assert.Equal(t, plog.SeverityNumberError, lr.SeverityNumber())
}

// Alerts found in a metrics pipeline are emitted in the logs pipeline of
// the same processor; without one they are counted.
func TestMetricsAlertsGoToLogsPipeline(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	cfg := testConfig()
	sink := new(consumertest.LogsSink)
	logs := newLogs(t, set, cfg, sink)
	mp, err := NewFactory().CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, mp.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()

	rng := rand.New(rand.NewPCG(1, 2))
	i := 0
	for ; i < 80; i++ {
		require.NoError(t, mp.ConsumeMetrics(context.Background(), gaugeMetrics(at(i), 10+rng.Float64())))
	}
	for ; i < 83; i++ {
		require.NoError(t, mp.ConsumeMetrics(context.Background(), gaugeMetrics(at(i), 500)))
	}
	assert.Zero(t, sink.LogRecordCount())
	require.NoError(t, logs.ConsumeLogs(context.Background(), plog.NewLogs()))
	found := anomalies(sink.AllLogs()[0])
	require.Len(t, found, 1)
	assert.Regexp(t, `^queue\.depth for checkout rose from 10(\.\d+)? to 500$`, found[0].Body().Str())

	opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualAnomalyDetectionAlerts(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("state", "firing")), Value: 1},
		{Attributes: attribute.NewSet(attribute.String("state", "resolved")), Value: 0},
	}, opts...)
	metadatatest.AssertEqualAnomalyDetectionSeries(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("state", "learning")), Value: 0},
		{Attributes: attribute.NewSet(attribute.String("state", "normal")), Value: 0},
		{Attributes: attribute.NewSet(attribute.String("state", "anomalous")), Value: 1},
	}, opts...)
	metadatatest.AssertEqualAnomalyDetectionPoints(t, tel, []metricdata.DataPoint[int64]{{Value: 82}}, opts...)
}

func TestMetricsWithoutLogsPipelineCounted(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	next := new(consumertest.MetricsSink)
	mp, err := NewFactory().CreateMetrics(context.Background(), metadatatest.NewSettings(tel), testConfig(), next)
	require.NoError(t, err)
	require.NoError(t, mp.Start(context.Background(), componenttest.NewNopHost()))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 83 {
		v := 10 + rng.Float64()
		if i >= 80 {
			v = 500
		}
		require.NoError(t, mp.ConsumeMetrics(context.Background(), gaugeMetrics(at(i), v)))
	}
	assert.Equal(t, 83, next.DataPointCount(), "metrics pass through")
	var suppressed int64
	got, err := tel.GetMetric("otelcol_anomaly_detection_alerts_suppressed")
	require.NoError(t, err)
	for _, dp := range got.Data.(metricdata.Sum[int64]).DataPoints {
		if v, _ := dp.Attributes.Value("cause"); v.AsString() == "no_logs_pipeline" {
			suppressed = dp.Value
		}
	}
	assert.Equal(t, int64(1), suppressed)
	require.NoError(t, mp.Shutdown(context.Background()))
}
