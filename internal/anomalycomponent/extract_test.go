package anomalycomponent

import (
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/semconv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func newEngine(t *testing.T) (*anomaly.Engine, *Extractor) {
	t.Helper()
	cfg := anomaly.DefaultConfig()
	e, err := anomaly.New(cfg)
	require.NoError(t, err)
	return e, NewExtractor(e)
}

// find returns the series whose signal, edge words and Sub match.
func find(t *testing.T, e *anomaly.Engine, sig *anomaly.Signal, edge, sub string) *anomaly.Series {
	t.Helper()
	var found *anomaly.Series
	var have []string
	e.Each(func(s *anomaly.Series) {
		k := s.Key()
		have = append(have, k.Signal.Measure+" "+s.Identity().Edge+" "+k.Sub)
		if k.Signal == sig && s.Identity().Edge == edge && k.Sub == sub {
			found = s
		}
	})
	require.NotNil(t, found, "no %s series on %q (%q); have %q", sig.Measure, edge, sub, have)
	return found
}

// logsBatch feeds one batch of records built by fill at ts.
func logsBatch(e *anomaly.Engine, tr *Extractor, ts time.Time, res map[string]string, fill func(plog.LogRecordSlice, time.Time)) []anomaly.Alert {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	for k, v := range res {
		rl.Resource().Attributes().PutStr(k, v)
	}
	fill(rl.ScopeLogs().AppendEmpty().LogRecords(), ts)
	e.Begin(ts)
	tr.Logs(ld)
	return e.Done()
}

func TestFlowExtraction(t *testing.T) {
	e, tr := newEngine(t)
	// Both ends on this node: the client's and the server's record.
	fill := func(lrs plog.LogRecordSlice, ts time.Time) {
		for c := range 2 {
			f := flowRec{src: "10.0.0.1", dst: "10.0.0.2", sport: 40000 + int64(c), dport: 8080,
				srcBytes: 20000, dstBytes: 1_000_000, srcPkts: 300, dstPkts: 700, peerLocal: true}
			f.role, f.rttMicros, f.retrans = "client", 200+100*int64(c), 3
			appendFlow(lrs, ts, f)
			f.role, f.rttMicros, f.retrans = "server", 250, 7
			appendFlow(lrs, ts, f)
		}
	}
	for i := range 3 {
		logsBatch(e, tr, t0.Add(time.Duration(i)*10*time.Second), nil, fill)
	}
	const edge = "10.0.0.1 → 10.0.0.2:8080"
	rtt := find(t, e, FlowRTT, edge, "")
	v, _ := rtt.Last()
	assert.Equal(t, 0.25, v, "p99 of the servers' {0.25, 0.25} ms: the clients sent only ACKs (66 B/packet), their RTT is stale")
	assert.Equal(t, uint64(2), rtt.Points(), "windows 0 and 1 scored, 2 open")
	traffic := find(t, e, FlowTraffic, edge, "")
	v, _ = traffic.Last()
	assert.InDelta(t, 2*1_020_000/10.0, v, 1, "bytes/s, each connection once")
	assert.Equal(t, uint64(1), traffic.Points(), "the first window has no start to divide by")
	retr := find(t, e, FlowRetransmits, edge, "")
	v, _ = retr.Last()
	assert.InDelta(t, (2*3+2*7)/(2*300+2*700.0), v, 1e-12, "client over source packets, server over destination packets")
	id := rtt.Identity()
	assert.Equal(t, "p99 RTT "+edge, id.Subject)
	assert.Equal(t, []anomaly.Attr{
		{Key: "source", Value: "10.0.0.1"}, {Key: "destination", Value: "10.0.0.2"},
		{Key: "destination.port", Int: 8080, IsInt: true}, {Key: "network.transport", Value: "tcp"},
	}, id.Attrs)
}

// Edge names: k8s names from the record, then the local side's workload
// from the resource (k8sattributes), then the address.
func TestFlowEdgeNames(t *testing.T) {
	e, tr := newEngine(t)
	logsBatch(e, tr, t0, map[string]string{"k8s.deployment.name": "checkout"}, func(lrs plog.LogRecordSlice, ts time.Time) {
		appendFlow(lrs, ts, flowRec{src: "10.0.0.1", dst: "10.0.0.9", dport: 443, role: "client", rttMicros: 100, srcPkts: 1, srcBytes: 1500})
		lr := lrs.AppendEmpty()
		flow := lrs.At(0)
		flow.CopyTo(lr)
		lr.Attributes().PutStr("destination.k8s.service.name", "payments")
	})
	find(t, e, FlowRTT, "checkout → 10.0.0.9:443", "")
	find(t, e, FlowRTT, "checkout → payments:443", "")
}

// Workload edges: a connection through a Service is the edge to the
// workload of the backend that answered, named alike from both ends (the
// client's record names the backend's workload; the server's resource is
// named by k8sattributes), and moves to another edge when the Service sends
// it to other pods.
func TestFlowWorkloadEdges(t *testing.T) {
	e, tr := newEngine(t)
	client := func(backend string) func(plog.LogRecordSlice, time.Time) {
		return func(lrs plog.LogRecordSlice, ts time.Time) {
			appendFlow(lrs, ts, flowRec{src: "10.0.0.1", dst: "10.96.0.50", dport: 80, role: "client", rttMicros: 100, srcPkts: 1, srcBytes: 1500})
			a := lrs.At(lrs.Len() - 1).Attributes()
			a.PutStr("destination.k8s.service.name", "payments")
			a.PutStr("destination.k8s.workload.name", backend)
		}
	}
	local := map[string]string{"k8s.deployment.name": "checkout", "k8s.pod.name": "checkout-7d9c5b8f4-x2x9k", "service.name": "checkout-svc"}
	logsBatch(e, tr, t0, local, client("payments-v1"))
	logsBatch(e, tr, t0, map[string]string{"k8s.deployment.name": "payments-v1", "service.name": "payments"}, func(lrs plog.LogRecordSlice, ts time.Time) {
		appendFlow(lrs, ts, flowRec{src: "10.0.0.1", dst: "10.0.0.7", dport: 80, role: "server", rttMicros: 100, dstPkts: 1, dstBytes: 1500})
		lrs.At(lrs.Len()-1).Attributes().PutStr("source.k8s.workload.name", "checkout")
	})
	find(t, e, FlowTraffic, "checkout → payments-v1:80", "")
	find(t, e, FlowRTT, "checkout → payments-v1:80", "") // from the server's record
	logsBatch(e, tr, t0.Add(10*time.Second), local, client("wrong"))
	find(t, e, FlowTraffic, "checkout → wrong:80", "")
	// DNS: the resolver by its workload.
	logsBatch(e, tr, t0, nil, func(lrs plog.LogRecordSlice, ts time.Time) {
		appendDNS(lrs, ts, "10.96.0.10", "NOERROR", 1)
		lrs.At(lrs.Len()-1).Attributes().PutStr("destination.k8s.workload.name", "coredns")
	})
	assert.NotNil(t, e.Lookup(&anomaly.Key{Signal: DNSErrors, Edge: anomaly.EdgeKey{Family: anomaly.FamilyDNS, A: "coredns"}}))
}

// A dropped reply (service port → client's ephemeral port) counts on the
// edge of its request.
func TestDropExtraction(t *testing.T) {
	e, tr := newEngine(t)
	for i := range 3 {
		logsBatch(e, tr, t0.Add(time.Duration(i)*10*time.Second), nil, func(lrs plog.LogRecordSlice, ts time.Time) {
			appendDrop(lrs, ts, dropRec{src: "10.0.0.2", dst: "10.0.0.1", sport: 8080, dport: 45678, reason: "NETFILTER_DROP", count: 30})
			appendDrop(lrs, ts, dropRec{src: "10.0.0.1", dst: "10.0.0.2", sport: 45678, dport: 8080, reason: "NETFILTER_DROP", count: 12})
		})
	}
	s := find(t, e, DropRate, "10.0.0.1 → 10.0.0.2:8080", "NETFILTER_DROP")
	v, _ := s.Last()
	assert.InDelta(t, 4.2, v, 1e-9, "42 drops per 10 s")
	assert.Equal(t, "drop rate of NETFILTER_DROP on 10.0.0.1 → 10.0.0.2:8080", s.Identity().Subject)
}

func appendDNS(lrs plog.LogRecordSlice, ts time.Time, server, rcode string, ms float64) {
	lr := lrs.AppendEmpty()
	lr.SetEventName(semconv.EventDNS)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	a := lr.Attributes()
	a.PutStr("dns.question.name", "payments.default.svc.cluster.local")
	a.PutStr(semconv.AttrDNSRCode, rcode)
	a.PutStr(semconv.AttrServerAddr, server)
	a.PutInt(semconv.AttrServerPort, 53)
	a.PutDouble(semconv.AttrDNSDuration, ms/1000)
}

func TestDNSExtractionAndVolumeGate(t *testing.T) {
	e, tr := newEngine(t)
	for i := range 3 {
		logsBatch(e, tr, t0.Add(time.Duration(i)*10*time.Second), nil, func(lrs plog.LogRecordSlice, ts time.Time) {
			for q := range 30 {
				rcode, ms := "NOERROR", 1.0+float64(q%10)
				switch {
				case q < 3:
					rcode, ms = "TIMEOUT", 5000
				case q < 5:
					rcode = "SERVFAIL"
				case q < 10:
					rcode = "NXDOMAIN"
				}
				appendDNS(lrs, ts, "10.96.0.10", rcode, ms)
			}
			// A resolver asked three times per window: below min_count.
			for range 3 {
				appendDNS(lrs, ts, "10.0.0.53", "TIMEOUT", 5000)
			}
		})
	}
	to := find(t, e, DNSTimeouts, "resolver 10.96.0.10", "")
	v, _ := to.Last()
	assert.InDelta(t, 0.1, v, 1e-12)
	errs := find(t, e, DNSErrors, "resolver 10.96.0.10", "")
	v, _ = errs.Last()
	assert.InDelta(t, 2.0/30, v, 1e-12, "SERVFAIL counts, NXDOMAIN and TIMEOUT do not")
	dur := find(t, e, DNSDuration, "resolver 10.96.0.10", "")
	v, _ = dur.Last()
	assert.InDelta(t, 10, v, 0.5, "p99 of answered queries only")
	assert.Equal(t, "DNS timeouts at resolver 10.96.0.10", to.Identity().Subject)
	few := find(t, e, DNSTimeouts, "resolver 10.0.0.53", "")
	assert.Zero(t, few.Points(), "3 queries a window are never scored")
}

func TestSpanExtraction(t *testing.T) {
	e, tr := newEngine(t)
	batch := func(i int) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "checkout")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		end := t0.Add(time.Duration(i)*10*time.Second + 5*time.Second)
		for r := range 40 {
			for _, kind := range []ptrace.SpanKind{ptrace.SpanKindClient, ptrace.SpanKindServer} {
				sp := spans.AppendEmpty()
				sp.SetKind(kind)
				sp.SetName("GET")
				d := time.Duration(10+r) * time.Millisecond
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-d)))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
				a := sp.Attributes()
				a.PutStr("http.request.method", "GET")
				code := int64(200)
				if r < 4 {
					code = 503
				}
				a.PutInt("http.response.status_code", code)
				a.PutStr("server.address", "payments")
				a.PutInt("server.port", 8080)
			}
		}
		// Not HTTP: ignored.
		sp := spans.AppendEmpty()
		sp.SetKind(ptrace.SpanKindInternal)
		e.Begin(end)
		tr.Traces(td)
		e.Done()
	}
	for i := range 3 {
		batch(i)
	}
	lat := find(t, e, HTTPClientDuration, "checkout → payments:8080", "")
	v, _ := lat.Last()
	assert.InDelta(t, 49, v, 1)
	assert.Equal(t, "p99 latency checkout → payments:8080", lat.Identity().Subject)
	ratio := find(t, e, HTTPClient5xx, "checkout → payments:8080", "")
	v, _ = ratio.Last()
	assert.InDelta(t, 0.1, v, 1e-12)
	srv := find(t, e, HTTPServer5xx, "checkout (server)", "")
	assert.Equal(t, "HTTP 5xx ratio served by checkout", srv.Identity().Subject)
}

// Cumulative sums become rates per stream with reset handling; pods of one
// deployment (pod uid excluded) sum into one series; histograms give p50
// and p99 from their bucket increases.
func TestMetricExtraction(t *testing.T) {
	e, tr := newEngine(t)
	sec := func(s int) pcommon.Timestamp {
		return pcommon.NewTimestampFromTime(t0.Add(time.Duration(s) * time.Second))
	}
	batch := func(i int, counter [2]int64, starts [2]int, buckets []uint64) {
		md := pmetric.NewMetrics()
		for p := range 2 {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("k8s.deployment.name", "checkout")
			rm.Resource().Attributes().PutStr("k8s.pod.uid", []string{"uid-1", "uid-2"}[p])
			ms := rm.ScopeMetrics().AppendEmpty().Metrics()
			m := ms.AppendEmpty()
			m.SetName("requests")
			m.SetUnit("{request}")
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := sum.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(sec(starts[p]))
			dp.SetTimestamp(sec(10*i + 5))
			dp.SetIntValue(counter[p])
			dp.Attributes().PutStr("http.request.method", "GET")
			if p == 0 {
				h := ms.AppendEmpty()
				h.SetName("latency")
				h.SetUnit("s")
				hist := h.SetEmptyHistogram()
				hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				hdp := hist.DataPoints().AppendEmpty()
				hdp.SetStartTimestamp(sec(0))
				hdp.SetTimestamp(sec(10*i + 5))
				hdp.ExplicitBounds().FromRaw([]float64{0.01, 0.1, 1})
				hdp.BucketCounts().FromRaw(buckets)
				g := ms.AppendEmpty()
				g.SetName("queue")
				gdp := g.SetEmptyGauge().DataPoints()
				for _, v := range []float64{4, 6} {
					d := gdp.AppendEmpty()
					d.SetTimestamp(sec(10*i + 5))
					d.SetDoubleValue(v)
				}
			}
		}
		e.Begin(t0.Add(time.Duration(10*i+6) * time.Second))
		tr.Metrics(md)
		e.Done()
	}
	batch(0, [2]int64{1000, 500}, [2]int{0, 0}, []uint64{0, 0, 0, 0})
	batch(1, [2]int64{1100, 600}, [2]int{0, 0}, []uint64{90, 9, 1, 0})
	// Pod 2 restarted at 18 s and has counted 70 since.
	batch(2, [2]int64{1200, 70}, [2]int{0, 18}, []uint64{180, 18, 2, 0})
	batch(3, [2]int64{1300, 170}, [2]int{0, 18}, []uint64{270, 27, 3, 0})

	var rate *anomaly.Series
	e.Each(func(s *anomaly.Series) {
		if s.Key().Sub == "requests" {
			require.Nil(t, rate, "one series for both pods")
			rate = s
		}
	})
	require.NotNil(t, rate)
	assert.Equal(t, uint64(2), rate.Points())
	v, _ := rate.Last()
	// Window 2, (15 s, 25 s]: pod 1 counted 100; pod 2 restarted at 18 s
	// and counted 70 since (it counted nothing while down): 17/s.
	assert.InDelta(t, 17, v, 1e-9)
	id := rate.Identity()
	assert.Equal(t, "requests", id.Signal)
	assert.Equal(t, "{request}/s", id.Unit)
	assert.Equal(t, "requests rate for checkout {http.request.method=GET}", id.Subject)
	assert.Equal(t, []anomaly.Attr{{Key: "http.request.method", Value: "GET"}, {Key: "k8s.deployment.name", Value: "checkout"}}, id.Attrs)

	var p50, p99 float64
	e.Each(func(s *anomaly.Series) {
		if s.Key().Sub == "latency" {
			v, _ := s.Last()
			switch s.Key().Signal {
			case anomaly.MetricP50:
				p50 = v
			case anomaly.MetricP99:
				p99 = v
			}
		}
	})
	assert.InEpsilon(t, 0.0055, p50, 0.25, "within (0, 10 ms]")
	assert.InEpsilon(t, 0.1, p99, 0.25, "top of (10 ms, 100 ms]")
	var queue float64
	e.Each(func(s *anomaly.Series) {
		if s.Key().Sub == "queue" {
			queue, _ = s.Last()
		}
	})
	assert.Equal(t, 5.0, queue, "gauge: mean of the window")
}

// The anomaly record, field by field (golden file).
func TestAlertRecordGolden(t *testing.T) {
	since := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	alerts := []anomaly.Alert{
		{
			ID: "5f1d3c2a9b8e7d6c", State: anomaly.Firing, Severity: anomaly.SeverityError,
			Time: since.Add(10 * time.Second), Since: since,
			Signal: semconv.EventFlow, Measure: "rtt.p99", Unit: "ms", Edge: "checkout → payments:8080",
			Series: []anomaly.Attr{
				{Key: "source", Value: "checkout"}, {Key: "destination", Value: "payments"},
				{Key: "destination.port", Int: 8080, IsInt: true}, {Key: "network.transport", Value: "tcp"},
			},
			Observed: 310, Expected: 12, Score: 1,
			Signals: []string{"network.flow rtt.p99", "network.flow retransmit.ratio"},
			Body:    "p99 RTT checkout → payments:8080 rose from 12 ms to 310 ms; also TCP retransmissions rose from 0.1% to 4.5%",
		},
		{
			ID: "5f1d3c2a9b8e7d6c", State: anomaly.Resolved, Severity: anomaly.SeverityInfo,
			Time: since.Add(6 * time.Minute), Since: since,
			Signal: semconv.EventFlow, Measure: "rtt.p99", Unit: "ms", Edge: "checkout → payments:8080",
			Series: []anomaly.Attr{
				{Key: "source", Value: "checkout"}, {Key: "destination", Value: "payments"},
				{Key: "destination.port", Int: 8080, IsInt: true}, {Key: "network.transport", Value: "tcp"},
			},
			Observed: 12.5, Expected: 12,
			Signals: []string{"network.flow rtt.p99"},
			Body:    "p99 RTT checkout → payments:8080 returned to normal after 6m0s: 12.5 ms (expected 12 ms); it had risen from 12 ms to 310 ms",
		},
	}
	got := plog.NewLogs()
	AppendAlerts(got, alerts, "github.com/ebpfflow/ebpfflow/processor/anomalydetectionprocessor", "0.1.0-test",
		since.Add(11*time.Second))
	path := filepath.Join("testdata", "alerts.yaml")
	if *update {
		require.NoError(t, golden.WriteLogsToFile(path, got))
	}
	want, err := golden.ReadLogs(path)
	require.NoError(t, err)
	require.NoError(t, plogtest.CompareLogs(want, got))

	// Anomaly records fed back in are ignored.
	e, tr := newEngine(t)
	e.Begin(since)
	tr.Logs(got)
	e.Done()
	assert.Zero(t, e.Len())
}
