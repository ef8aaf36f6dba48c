//go:build linux

package ebpfflowreceiver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/engine"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/metadata"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/metadatatest"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/pdatabuild"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/preflight"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// statusHost records the component status the receiver reports.
type statusHost struct {
	component.Host
	mu     sync.Mutex
	events []*componentstatus.Event
}

func newStatusHost() *statusHost { return &statusHost{Host: componenttest.NewNopHost()} }

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *statusHost) statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []componentstatus.Status
	for _, ev := range h.events {
		out = append(out, ev.Status())
	}
	return out
}

func TestFactorySharesOneReceiverAcrossSignals(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig()
	set := receivertest.NewNopSettings(metadata.Type)
	logs, err := f.CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	metrics, err := f.CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.Same(t, logs, metrics)
	require.NoError(t, logs.Shutdown(context.Background()))
	require.NoError(t, metrics.Shutdown(context.Background()))
}

// newTestReceiver returns an unstarted receiver, reporting its telemetry to
// tel when not nil.
func newTestReceiver(t *testing.T, tel *componenttest.Telemetry) *ebpfflowReceiver {
	t.Helper()
	s := receivertest.NewNopSettings(metadata.Type)
	if tel != nil {
		s = metadatatest.NewSettings(tel)
	}
	core, err := newReceiver(s, createDefaultConfig())
	require.NoError(t, err)
	return core.(*ebpfflowReceiver)
}

func TestShutdownWithoutStartIsIdempotent(t *testing.T) {
	r := newTestReceiver(t, nil)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestConsumeRoutesReports(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r := newTestReceiver(t, tel)
	logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	r.setLogs(logs)
	r.setMetrics(metrics)
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	r.ctx = context.Background()
	r.tr = pdatabuild.New(start, createDefaultConfig().builderConfig("", "node-1", "host-1"))

	local := observed.Workload{CgroupPath: "/system.slice/app.service", PID: 10, Executable: "app"}
	r.consume(observed.Report{
		Time: start.Add(10 * time.Second),
		Flows: []observed.Flow{{
			Local: local, Transport: observed.TransportTCP, LocalRole: observed.RoleClient,
			Source: netip.MustParseAddrPort("127.0.0.1:40000"), Dest: netip.MustParseAddrPort("127.0.0.1:8080"),
			SourceBytes: 100, SourcePackets: 2, DestBytes: 50, DestPackets: 1, State: observed.TCPEstablished,
			Scope: observed.ScopeNode,
		}},
		Drops: []observed.Drop{{Reason: "NO_SOCKET", Transport: observed.TransportTCP, Count: 1}},
	})
	assert.Equal(t, 2, logs.LogRecordCount())
	assert.Equal(t, 5, metrics.DataPointCount()) // bytes and packets both ways, one drop series

	// An empty report sends no logs, but the cumulative series again.
	r.consume(observed.Report{Time: start.Add(20 * time.Second)})
	assert.Len(t, logs.AllLogs(), 1)
	require.Len(t, metrics.AllMetrics(), 2)
	assert.Equal(t, 5, metrics.AllMetrics()[1].DataPointCount())

	got, err := tel.GetMetric("otelcol_receiver_accepted_log_records")
	require.NoError(t, err)
	assert.Equal(t, int64(2), got.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
}

func TestConsumeCountsRefusedData(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r := newTestReceiver(t, tel)
	r.setLogs(consumertest.NewErr(errors.New("pipeline full")))
	r.ctx = context.Background()
	r.tr = pdatabuild.New(time.Now(), createDefaultConfig().builderConfig("", "", ""))
	r.consume(observed.Report{Time: time.Now(), Drops: []observed.Drop{{Reason: "NO_SOCKET", Count: 1}}})

	got, err := tel.GetMetric("otelcol_receiver_refused_log_records")
	require.NoError(t, err)
	assert.Equal(t, int64(1), got.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
}

func TestSelfTelemetryFromEngineStats(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r := newTestReceiver(t, tel)
	r.tr = pdatabuild.New(time.Now(), createDefaultConfig().builderConfig("", "", ""))
	stats := engine.Stats{
		Probes: map[string]engine.ProbeStats{
			"flow": {Counters: probe.Counters{Events: 1000, MapFull: 1, RingbufFull: 2, ParseErrors: 3, DecodeErrors: 4}},
			"drop": {Err: errors.New("attach tp_btf/kfree_skb: permission denied")},
		},
		FlowsActive: 42,
		Evicted:     10,
	}
	require.NoError(t, r.registerTelemetry(func() engine.Stats { return stats }))
	t.Cleanup(r.telemetry.Shutdown)

	probeAttr := func(p string) attribute.Set { return attribute.NewSet(attribute.String("probe", p)) }
	lost := func(p, cause string) attribute.Set {
		return attribute.NewSet(attribute.String("probe", p), attribute.String("cause", cause))
	}
	opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualEbpfflowEvents(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: probeAttr("drop"), Value: 0},
		{Attributes: probeAttr("flow"), Value: 1000},
	}, append(opts, metricdatatest.IgnoreValue())...)
	metadatatest.AssertEqualEbpfflowEventsLost(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: lost("flow", "ring_buffer_full"), Value: 2},
		{Attributes: lost("flow", "map_full"), Value: 11}, // 1 in the kernel + 10 evicted from the LRU
		{Attributes: lost("flow", "parse_error"), Value: 3},
		{Attributes: lost("flow", "decode_error"), Value: 4},
		{Attributes: lost("drop", "ring_buffer_full"), Value: 0},
		{Attributes: lost("drop", "map_full"), Value: 0},
		{Attributes: lost("drop", "parse_error"), Value: 0},
		{Attributes: lost("drop", "decode_error"), Value: 0},
	}, opts...)
	metadatatest.AssertEqualEbpfflowFlowsActive(t, tel, []metricdata.DataPoint[int64]{{Value: 42}}, opts...)
	metadatatest.AssertEqualEbpfflowProbeUp(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: probeAttr("drop"), Value: 0},
		{Attributes: probeAttr("flow"), Value: 1},
	}, opts...)
	metadatatest.AssertEqualEbpfflowMetricSeries(t, tel, []metricdata.DataPoint[int64]{{Value: 0}}, opts...)
	metadatatest.AssertEqualEbpfflowMetricSeriesEvicted(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("reason", "idle")), Value: 0},
		{Attributes: attribute.NewSet(attribute.String("reason", "limit")), Value: 0},
	}, opts...)
}

func TestProbeFailureDegradesStatus(t *testing.T) {
	r := newTestReceiver(t, nil)
	host := newStatusHost()
	r.host = host
	ok := engine.Stats{Probes: map[string]engine.ProbeStats{"flow": {}, "drop": {}}}
	bad := engine.Stats{Probes: map[string]engine.ProbeStats{"flow": {}, "drop": {Err: errors.New("attach: EPERM")}}}

	r.reportProbes(ok)
	assert.Empty(t, host.statuses(), "healthy from the start: nothing to report")
	r.reportProbes(bad)
	r.reportProbes(bad)
	require.Equal(t, []componentstatus.Status{componentstatus.StatusRecoverableError}, host.statuses(), "reported once per change")
	assert.ErrorContains(t, host.events[0].Err(), "probe drop: attach: EPERM")
	r.reportProbes(ok)
	assert.Equal(t, []componentstatus.Status{componentstatus.StatusRecoverableError, componentstatus.StatusOK}, host.statuses())
}

// A kernel that refuses the flow probe's socket-owner program leaves flows
// without pid and command: reported as probe flow_owner, in the status and
// in ebpfflow_probe_up, beside the flow probe that still runs.
func TestFlowOwnerFailureReported(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r := newTestReceiver(t, tel)
	r.tr = pdatabuild.New(time.Now(), createDefaultConfig().builderConfig("", "", ""))
	host := newStatusHost()
	r.host = host
	stats := engine.Stats{
		Probes: map[string]engine.ProbeStats{"flow": {}},
		Parts:  map[string]error{engine.ProbeFlowOwner: errors.New("load cgroup/sock_create: permission denied")},
	}
	require.NoError(t, r.registerTelemetry(func() engine.Stats { return stats }))
	t.Cleanup(r.telemetry.Shutdown)
	probeAttr := func(p string) attribute.Set { return attribute.NewSet(attribute.String("probe", p)) }
	metadatatest.AssertEqualEbpfflowProbeUp(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: probeAttr("flow"), Value: 1},
		{Attributes: probeAttr("flow_owner"), Value: 0},
	}, metricdatatest.IgnoreTimestamp())

	r.reportProbes(stats)
	require.Equal(t, []componentstatus.Status{componentstatus.StatusRecoverableError}, host.statuses())
	assert.ErrorContains(t, host.events[0].Err(), "probe flow_owner: load cgroup/sock_create")
}

// envUnprivileged marks the re-executed test binary that runs without root.
const envUnprivileged = "EBPFFLOW_TEST_UNPRIVILEGED"

// TestStartFailsWithoutPrivileges checks that an unprivileged start fails
// with an error that says how to fix it. As root it re-runs itself as nobody.
func TestStartFailsWithoutPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		r := newTestReceiver(t, nil)
		err := r.Start(context.Background(), componenttest.NewNopHost())
		require.Error(t, err)
		t.Logf("start error: %v", err)
		assert.ErrorContains(t, err, "start ebpfflow receiver")
		assert.ErrorIs(t, err, preflight.ErrNotPrivileged)
		assert.ErrorContains(t, err, "CAP_BPF", "the error says what is missing")
		assert.ErrorContains(t, err, "setcap", "and how to grant it")
		require.NoError(t, r.Shutdown(context.Background()))
		return
	}
	if os.Getenv(envUnprivileged) != "" {
		t.Fatal("still root after dropping privileges")
	}
	// The test binary's build directory is private to root, and so is
	// t.TempDir's parent: copy the binary to a directory nobody can enter.
	dir, err := os.MkdirTemp("", "ebpfflow-unprivileged-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "receiver.test")
	copyFile(t, os.Args[0], bin)
	cmd := exec.Command(bin, "-test.run=^TestStartFailsWithoutPrivileges$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), envUnprivileged+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("as nobody:\n%s", out)
	require.NoError(t, err)
	assert.Contains(t, string(out), "--- PASS: TestStartFailsWithoutPrivileges")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
}

// TestReceiverCountsLoopbackTransfer runs the real probes: a TCP transfer of
// known size over loopback must show up in the flow records and metrics at
// the IP layer, so at least the payload and within a few percent of it.
func TestReceiverCountsLoopbackTransfer(t *testing.T) {
	testkit.RequireRoot(t)
	const sent, answered = 1 << 20, 4096
	logs, metrics := startReceiver(t)

	port := transfer(t, sent, answered)
	began := time.Now()

	// Sum the client's records of the connection until its final one.
	var srcBytes, dstBytes int64
	var closeCause string
	require.Eventually(t, func() bool {
		srcBytes, dstBytes, closeCause = 0, 0, ""
		for _, ld := range logs.AllLogs() {
			forEachLogRecord(ld, func(lr plog.LogRecord) {
				a := lr.Attributes()
				if lr.EventName() != semconv.EventFlow || intAttr(a, "destination.port") != int64(port) || strAttr(a, "ebpfflow.flow.local_role") != "client" {
					return
				}
				srcBytes += intAttr(a, "ebpfflow.flow.source.bytes")
				dstBytes += intAttr(a, "ebpfflow.flow.destination.bytes")
				if c := strAttr(a, "ebpfflow.flow.close_cause"); c != "" {
					closeCause = c
				}
			})
		}
		return closeCause != ""
	}, 10*time.Second, 100*time.Millisecond, "no final network.flow record for port %d", port)
	t.Logf("after %v: client records: source.bytes=%d destination.bytes=%d close_cause=%s", time.Since(began).Round(time.Millisecond), srcBytes, dstBytes, closeCause)
	assert.GreaterOrEqual(t, srcBytes, int64(sent))
	assert.LessOrEqual(t, srcBytes, int64(sent*103/100), "IP + TCP headers are a few percent at most")
	assert.GreaterOrEqual(t, dstBytes, int64(answered))
	assert.Equal(t, "fin", closeCause)

	require.Eventually(t, func() bool {
		return maxMetric(metrics, "ebpfflow.network.flow.bytes", func(a pcommon.Map) bool {
			return intAttr(a, "destination.port") == int64(port) && strAttr(a, "ebpfflow.flow.local_role") == "client" &&
				strAttr(a, "network.io.direction") == "transmit"
		}) >= sent
	}, 5*time.Second, 100*time.Millisecond, "ebpfflow.network.flow.bytes misses the transfer")
}

// TestReceiverReportsRefusedConnect runs the real probes: a connect to a
// closed loopback port is a refused flow, a connection failure, and a
// NO_SOCKET drop of the SYN.
func TestReceiverReportsRefusedConnect(t *testing.T) {
	testkit.RequireRoot(t)
	logs, metrics := startReceiver(t)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	port := int64(ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, ln.Close())
	_, err = net.Dial("tcp4", addr)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)

	var refused, dropped bool
	assert.Eventually(t, func() bool {
		refused, dropped = false, false
		for _, ld := range logs.AllLogs() {
			forEachLogRecord(ld, func(lr plog.LogRecord) {
				a := lr.Attributes()
				if intAttr(a, "destination.port") != port {
					return
				}
				switch lr.EventName() {
				case semconv.EventFlow:
					refused = refused || strAttr(a, "ebpfflow.flow.close_cause") == "refused"
				case semconv.EventDrop:
					dropped = dropped || strAttr(a, "ebpfflow.drop.reason") == "NO_SOCKET"
				}
			})
		}
		return refused && dropped
	}, 10*time.Second, 100*time.Millisecond)
	require.True(t, refused, "no network.flow with close_cause refused to port %d", port)
	require.True(t, dropped, "no network.drop NO_SOCKET to port %d", port)

	require.Eventually(t, func() bool {
		return maxMetric(metrics, "ebpfflow.tcp.connection.failures", func(a pcommon.Map) bool {
			return intAttr(a, "destination.port") == port && strAttr(a, "ebpfflow.flow.close_cause") == "refused"
		}) == 1
	}, 5*time.Second, 100*time.Millisecond, "ebpfflow.tcp.connection.failures misses the refused connect")
}

// startReceiver starts the receiver for logs and metrics with a short flush
// interval and shuts it down at the end of the test.
func startReceiver(t *testing.T) (*consumertest.LogsSink, *consumertest.MetricsSink) {
	t.Helper()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.FlushInterval = 200 * time.Millisecond
	set := receivertest.NewNopSettings(metadata.Type)
	logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	logsRcv, err := f.CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	metricsRcv, err := f.CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	host := newStatusHost()
	require.NoError(t, logsRcv.Start(context.Background(), host))
	require.NoError(t, metricsRcv.Start(context.Background(), host))
	t.Cleanup(func() {
		require.NoError(t, logsRcv.Shutdown(context.Background()))
		require.NoError(t, metricsRcv.Shutdown(context.Background()))
	})
	assert.Empty(t, host.statuses(), "no probe degraded")
	return logs, metrics
}

// transfer sends `sent` bytes to a loopback server that answers `answered`
// bytes, closes the connection and returns the server's port.
func transfer(t *testing.T, sent, answered int) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		if _, err := io.CopyN(io.Discard, c, int64(sent)); err != nil {
			done <- err
			return
		}
		_, err = c.Write(make([]byte, answered))
		done <- err
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	require.NoError(t, err)
	_, err = c.Write(make([]byte, sent))
	require.NoError(t, err)
	_, err = io.CopyN(io.Discard, c, int64(answered))
	require.NoError(t, err)
	require.NoError(t, <-done)
	require.NoError(t, c.Close())
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

func forEachLogRecord(ld plog.Logs, f func(plog.LogRecord)) {
	for i := range ld.ResourceLogs().Len() {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				f(lrs.At(k))
			}
		}
	}
}

// maxMetric is the largest sumMetric over the batches received so far: a
// series idle long enough on a slow machine is no longer in the last batch.
func maxMetric(sink *consumertest.MetricsSink, name string, match func(pcommon.Map) bool) int64 {
	var highest int64
	for _, md := range sink.AllMetrics() {
		highest = max(highest, sumMetric(md, name, match))
	}
	return highest
}

// sumMetric adds up the data points of the sum metric name that match.
func sumMetric(md pmetric.Metrics, name string, match func(pcommon.Map) bool) int64 {
	var total int64
	for i := range md.ResourceMetrics().Len() {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				if m.Name() != name {
					continue
				}
				for l := range m.Sum().DataPoints().Len() {
					if dp := m.Sum().DataPoints().At(l); match(dp.Attributes()) {
						total += dp.IntValue()
					}
				}
			}
		}
	}
	return total
}

func intAttr(m pcommon.Map, k string) int64 {
	v, _ := m.Get(k)
	return v.Int()
}

func strAttr(m pcommon.Map, k string) string {
	v, _ := m.Get(k)
	return v.Str()
}
