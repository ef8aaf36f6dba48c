package anomalycomponent

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/semconv"
)

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// flowRec is one synthetic network.flow record, as the receiver emits it.
type flowRec struct {
	src, dst     string
	sport, dport int64
	role         string // local_role
	rttMicros    int64
	srcBytes     int64
	dstBytes     int64
	srcPkts      int64
	dstPkts      int64
	retrans      int64
	peerLocal    bool // the other end is a workload of this node
}

type dropRec struct {
	src, dst     string
	sport, dport int64
	reason       string
	count        int64
}

func appendFlow(lrs plog.LogRecordSlice, ts time.Time, f flowRec) {
	lr := lrs.AppendEmpty()
	lr.SetEventName(semconv.EventFlow)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	a := lr.Attributes()
	a.PutStr(semconv.AttrEventName, semconv.EventFlow)
	a.PutStr(semconv.AttrTransport, "tcp")
	a.PutStr("network.type", "ipv4")
	a.PutStr(semconv.AttrSrcAddr, f.src)
	a.PutInt(semconv.AttrSrcPort, f.sport)
	a.PutStr(semconv.AttrDstAddr, f.dst)
	a.PutInt(semconv.AttrDstPort, f.dport)
	a.PutInt(semconv.AttrFlowSrcBytes, f.srcBytes)
	a.PutInt(semconv.AttrFlowSrcPackets, f.srcPkts)
	a.PutInt(semconv.AttrFlowDstBytes, f.dstBytes)
	a.PutInt(semconv.AttrFlowDstPackets, f.dstPkts)
	a.PutStr(semconv.AttrFlowLocalRole, f.role)
	a.PutStr("network.connection.state", "established")
	if f.rttMicros > 0 {
		a.PutDouble(semconv.AttrTCPRTT, float64(f.rttMicros)/1e6)
	}
	a.PutInt(semconv.AttrTCPRetransmits, f.retrans)
	a.PutInt("ebpfflow.tcp.resets", 0)
	a.PutStr("ebpfflow.flow.verdict", "forwarded")
	if f.peerLocal {
		peer := "destination"
		if f.role == "server" {
			peer = "source"
		}
		a.PutStr(peer+".k8s.pod.uid", "uid-"+f.src+"-"+f.dst)
	}
}

func appendDrop(lrs plog.LogRecordSlice, ts time.Time, d dropRec) {
	lr := lrs.AppendEmpty()
	lr.SetEventName(semconv.EventDrop)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	a := lr.Attributes()
	a.PutStr(semconv.AttrEventName, semconv.EventDrop)
	a.PutStr(semconv.AttrDropReason, d.reason)
	a.PutInt(semconv.AttrDropCount, d.count)
	a.PutStr(semconv.AttrTransport, "tcp")
	a.PutStr(semconv.AttrSrcAddr, d.src)
	a.PutInt(semconv.AttrSrcPort, d.sport)
	a.PutStr(semconv.AttrDstAddr, d.dst)
	a.PutInt(semconv.AttrDstPort, d.dport)
}

// sim drives a translator and engine with synthetic receiver flushes.
type sim struct {
	t      *testing.T
	e      *anomaly.Engine
	tr     *Extractor
	alerts []anomaly.Alert
	rng    *rand.Rand
}

func newSim(t *testing.T, cfg anomaly.Config) *sim {
	e, err := anomaly.New(cfg)
	require.NoError(t, err)
	return &sim{t: t, e: e, tr: NewExtractor(e), rng: rand.New(rand.NewPCG(7, 11))}
}

// flush feeds one receiver report at ts (with up to 50 ms of jitter)
// built by fill, and collects alerts.
func (s *sim) flush(ts time.Time, fill func(lrs plog.LogRecordSlice, ts time.Time)) []anomaly.Alert {
	ts = ts.Add(time.Duration(s.rng.IntN(50)) * time.Millisecond)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.node.name", "node-1")
	fill(rl.ScopeLogs().AppendEmpty().LogRecords(), ts)
	s.e.Begin(ts.Add(100 * time.Millisecond))
	s.tr.Logs(ld)
	got := append([]anomaly.Alert(nil), s.e.Done()...)
	s.alerts = append(s.alerts, got...)
	return got
}

// steadyEdges writes the records of two busy edges (three connections
// each, both ends on this node), with RTT rttAB on a → b.
func (s *sim) steadyEdges(lrs plog.LogRecordSlice, ts time.Time, rttAB time.Duration) {
	for c := range 3 {
		for _, e := range []struct {
			src, dst string
			port     int64
			rtt      time.Duration
		}{{"10.0.0.1", "10.0.0.2", 8080, rttAB}, {"10.0.0.3", "10.0.0.4", 5432, 300 * time.Microsecond}} {
			jit := func(v float64) int64 { return int64(v * (1 + 0.1*s.rng.NormFloat64())) }
			rtt := jit(float64(e.rtt.Microseconds()))
			f := flowRec{src: e.src, dst: e.dst, sport: 40000 + int64(c), dport: e.port, rttMicros: rtt,
				srcBytes: jit(20000), dstBytes: jit(1_000_000), srcPkts: jit(300), dstPkts: jit(700),
				retrans: int64(s.rng.IntN(2)), peerLocal: true}
			f.role = "client"
			appendFlow(lrs, ts, f)
			f.role = "server"
			f.rttMicros = jit(float64(e.rtt.Microseconds()))
			appendFlow(lrs, ts, f)
		}
	}
}

// TestSimulatedLatencyStep: steady traffic on two edges, then a latency
// step on one of them, then recovery. Exactly one firing alert naming that
// edge with its before and after values, then one resolved; nothing during
// steady state. Default configuration (10 s windows, 100 windows of
// warm-up), receiver flushes every 10 s.
func TestSimulatedLatencyStep(t *testing.T) {
	s := newSim(t, anomaly.DefaultConfig())
	const steady, fault, recovery = 360, 30, 120 // windows: 1 h, 5 min, 20 min
	i := 0
	for ; i < steady; i++ {
		got := s.flush(t0.Add(time.Duration(i)*10*time.Second), func(lrs plog.LogRecordSlice, ts time.Time) {
			s.steadyEdges(lrs, ts, 200*time.Microsecond)
		})
		require.Empty(t, got, "alert during steady state at window %d: %+v", i, got)
	}
	faultAt := t0.Add(time.Duration(i) * 10 * time.Second)
	for ; i < steady+fault; i++ {
		s.flush(t0.Add(time.Duration(i)*10*time.Second), func(lrs plog.LogRecordSlice, ts time.Time) {
			s.steadyEdges(lrs, ts, 20*time.Millisecond)
		})
	}
	require.Len(t, s.alerts, 1, "one firing alert: %+v", s.alerts)
	a := s.alerts[0]
	assert.Equal(t, anomaly.Firing, a.State)
	assert.Equal(t, "10.0.0.1 → 10.0.0.2:8080", a.Edge)
	assert.Equal(t, semconv.EventFlow, a.Signal)
	assert.Equal(t, "rtt.p99", a.Measure)
	assert.Equal(t, anomaly.SeverityError, a.Severity)
	assert.InDelta(t, 0.2, a.Expected, 0.08, "before: ~0.2 ms")
	assert.InDelta(t, 20, a.Observed, 6, "after: ~20 ms")
	assert.True(t, strings.HasPrefix(a.Body, "p99 RTT 10.0.0.1 → 10.0.0.2:8080 rose from 0."), a.Body)
	assert.Contains(t, a.Body, " ms to 2")
	latency := a.Time.Sub(faultAt)
	assert.LessOrEqual(t, latency, 30*time.Second, "alert latency (event time)")
	t.Logf("firing after %v: %s", latency, a.Body)

	for ; i < steady+fault+recovery; i++ {
		s.flush(t0.Add(time.Duration(i)*10*time.Second), func(lrs plog.LogRecordSlice, ts time.Time) {
			s.steadyEdges(lrs, ts, 200*time.Microsecond)
		})
	}
	require.Len(t, s.alerts, 2, "firing then resolved: %+v", s.alerts)
	r := s.alerts[1]
	assert.Equal(t, anomaly.Resolved, r.State)
	assert.Equal(t, a.ID, r.ID)
	assert.Equal(t, a.Edge, r.Edge)
	assert.Equal(t, a.Since, r.Since)
	t.Logf("resolved after %v of recovery: %s", r.Time.Sub(faultAt.Add(fault*10*time.Second)), r.Body)
}

// TestSimulatedSteadyManyEdges: two hours of steady, noisy traffic on 30
// edges (90 series) raise no alert.
func TestSimulatedSteadyManyEdges(t *testing.T) {
	s := newSim(t, anomaly.DefaultConfig())
	for i := range 720 {
		s.flush(t0.Add(time.Duration(i)*10*time.Second), func(lrs plog.LogRecordSlice, ts time.Time) {
			for e := range 30 {
				base := float64(100 + 37*e) // µs
				for c := range 2 {
					jit := func(v float64) int64 { return int64(v * (1 + 0.15*s.rng.NormFloat64())) }
					appendFlow(lrs, ts, flowRec{src: fmt.Sprintf("10.1.%d.1", e), dst: fmt.Sprintf("10.2.%d.1", e),
						sport: 40000 + int64(c), dport: 8080, role: "client", rttMicros: jit(base),
						srcBytes: jit(5000), dstBytes: jit(200000), srcPkts: jit(100), dstPkts: jit(200),
						retrans: int64(s.rng.IntN(3))})
				}
			}
		})
	}
	for _, a := range s.alerts {
		t.Errorf("alert in steady state: %s", a.Body)
	}
	st := s.e.Stats()
	t.Logf("series %d, points %d, suppressed %v/%v/%v (improvement/small_change/low_volume)", s.e.Len(), st.PointsScored.Load(),
		st.Suppressed[anomaly.CauseImprovement].Load(), st.Suppressed[anomaly.CauseSmallChange].Load(), st.Suppressed[anomaly.CauseLowVolume].Load())
}

// TestSimulatedResolverStop: steady DNS lookups, then the resolver stops
// answering (every query times out), then it comes back.
func TestSimulatedResolverStop(t *testing.T) {
	s := newSim(t, anomaly.DefaultConfig())
	dns := func(stopped bool) func(plog.LogRecordSlice, time.Time) {
		return func(lrs plog.LogRecordSlice, ts time.Time) {
			for q := range 40 {
				switch {
				case stopped:
					appendDNS(lrs, ts, "10.96.0.10", "TIMEOUT", 5000)
				case q%8 == 0:
					appendDNS(lrs, ts, "10.96.0.10", "NXDOMAIN", 1+s.rng.Float64())
				default:
					appendDNS(lrs, ts, "10.96.0.10", "NOERROR", 1+s.rng.Float64())
				}
			}
		}
	}
	i := 0
	for ; i < 300; i++ {
		require.Empty(t, s.flush(t0.Add(time.Duration(i)*10*time.Second), dns(false)))
	}
	for ; i < 320; i++ {
		s.flush(t0.Add(time.Duration(i)*10*time.Second), dns(true))
	}
	require.Len(t, s.alerts, 1, "%+v", s.alerts)
	assert.Equal(t, "DNS timeouts at resolver 10.96.0.10 rose from 0% to 100%", s.alerts[0].Body)
	assert.Equal(t, "resolver 10.96.0.10", s.alerts[0].Edge)
	for ; i < 420; i++ {
		s.flush(t0.Add(time.Duration(i)*10*time.Second), dns(false))
	}
	require.Len(t, s.alerts, 2, "%+v", s.alerts)
	assert.Equal(t, anomaly.Resolved, s.alerts[1].State)
}

// TestSimulatedPacketLoss: packet loss on one edge (netfilter drops and
// retransmissions) raises one alert for that edge, listing its signals.
func TestSimulatedPacketLoss(t *testing.T) {
	s := newSim(t, anomaly.DefaultConfig())
	traffic := func(loss bool) func(plog.LogRecordSlice, time.Time) {
		return func(lrs plog.LogRecordSlice, ts time.Time) {
			s.steadyEdges(lrs, ts, 200*time.Microsecond)
			if loss {
				for c := range 3 {
					appendDrop(lrs, ts, dropRec{src: "10.0.0.3", dst: "10.0.0.4", sport: 40000 + int64(c), dport: 5432,
						reason: "NETFILTER_DROP", count: 15 + int64(s.rng.IntN(5))})
				}
			}
		}
	}
	i := 0
	for ; i < 300; i++ {
		require.Empty(t, s.flush(t0.Add(time.Duration(i)*10*time.Second), traffic(false)))
	}
	for ; i < 330; i++ {
		s.flush(t0.Add(time.Duration(i)*10*time.Second), traffic(true))
	}
	require.Len(t, s.alerts, 1, "%+v", s.alerts)
	a := s.alerts[0]
	assert.Equal(t, "10.0.0.3 → 10.0.0.4:5432", a.Edge)
	assert.Regexp(t, `^drop rate of NETFILTER_DROP on 10\.0\.0\.3 → 10\.0\.0\.4:5432 rose from 0/s to [4-6](\.\d+)?/s`, a.Body)
	t.Log(a.Body)
	for ; i < 450; i++ {
		s.flush(t0.Add(time.Duration(i)*10*time.Second), traffic(false))
	}
	require.Len(t, s.alerts, 2, "%+v", s.alerts)
	assert.Equal(t, anomaly.Resolved, s.alerts[1].State)
	t.Log(s.alerts[1].Body)
}
