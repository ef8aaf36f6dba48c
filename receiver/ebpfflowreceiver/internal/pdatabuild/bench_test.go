package pdatabuild

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/flowtable"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// benchReport is one flush of 10k active flows spread over 100 pods, each
// client talking to one of 50 server ports.
func benchReport(at time.Time) observed.Report {
	r := observed.Report{Time: at, Flows: make([]observed.Flow, 0, 10000)}
	for i := range 10000 {
		pod := i % 100
		w := observed.Workload{
			CgroupID:    uint64(1000 + pod),
			CgroupPath:  fmt.Sprintf("/kubepods/pod%04d/c%04d", pod, pod),
			ContainerID: fmt.Sprintf("c%04d", pod),
			PodUID:      fmt.Sprintf("pod%04d", pod),
			PodIP:       netip.AddrFrom4([4]byte{10, 244, 0, byte(pod)}),
		}
		r.Flows = append(r.Flows, observed.Flow{
			Local: w, Transport: observed.TransportTCP, LocalRole: observed.RoleClient,
			Source:      netip.AddrPortFrom(w.PodIP, uint16(30000+i)),
			Dest:        netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 96, 0, byte(i % 7)}), uint16(8000+i%50)),
			SourceBytes: 1000, SourcePackets: 10, DestBytes: 5000, DestPackets: 8,
			State: observed.TCPEstablished, SRTT: time.Duration(100+i%1000) * time.Microsecond,
			Scope: observed.ScopeCluster, Start: at.Add(-time.Minute), End: at,
		})
	}
	return r
}

func BenchmarkLogs10kFlows(b *testing.B) {
	tr := New(t0, Config{NodeName: "node", HostName: "host", SeriesIdleTimeout: 5 * time.Minute, MaxSeries: 100000})
	r := benchReport(t1)
	b.ReportAllocs()
	for b.Loop() {
		_ = tr.Logs(r)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/flow")
}

func BenchmarkMetrics10kFlows(b *testing.B) {
	tr := New(t0, Config{NodeName: "node", HostName: "host", SeriesIdleTimeout: 5 * time.Minute, MaxSeries: 100000})
	r := benchReport(t1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r.Time = t1.Add(time.Duration(i) * time.Second)
		_ = tr.Metrics(r)
	}
	b.ReportMetric(float64(tr.Series()), "series")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/flow")
}

// BenchmarkSteadyState10kFlows runs what the receiver does each flush with
// 10k active flows: flowtable.Update, then Logs and Metrics. It reports the
// live heap after a GC while the last flush's pdata is still held (what the
// collector keeps at steady state) and the garbage per flush.
func BenchmarkSteadyState10kFlows(b *testing.B) {
	const n = 10000
	flows := make([]observed.FlowSample, n)
	socks := make([]observed.TCPSample, n)
	for i := range flows {
		pod := i % 100
		local := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, 0, byte(pod)}), uint16(30000+i))
		remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 96, 0, byte(i % 7)}), uint16(8000+i%50))
		flows[i] = observed.FlowSample{Cookie: uint64(i + 1), Transport: observed.TransportTCP, Local: local, Remote: remote,
			CgroupID: uint64(1000 + pod), FirstSeen: t0, LastSeen: t0, Initiator: observed.InitiatorLocal}
		socks[i] = observed.TCPSample{Cookie: uint64(i + 1), Local: local, Remote: remote, State: observed.TCPEstablished,
			Initiator: observed.InitiatorLocal, OpenedAt: t0, SRTT: time.Millisecond}
	}
	workloads := make(map[uint64]observed.Workload)
	tb := flowtable.New(flowtable.Config{
		IdleIntervals: 2,
		Identity: func(cg uint64, _ uint32, _ string, local netip.Addr) observed.Workload {
			w, ok := workloads[cg]
			if !ok {
				pod := cg - 1000
				w = observed.Workload{CgroupID: cg, CgroupPath: fmt.Sprintf("/kubepods/pod%04d/c%04d", pod, pod),
					ContainerID: fmt.Sprintf("c%04d", pod), PodUID: fmt.Sprintf("pod%04d", pod), PodIP: local}
				workloads[cg] = w
			}
			return w
		},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	tr := New(t0, Config{NodeName: "node", HostName: "host", SeriesIdleTimeout: 5 * time.Minute, MaxSeries: 100000})
	var (
		ld  plog.Logs
		md  pmetric.Metrics
		now = t1
	)
	flush := func() {
		for i := range flows {
			flows[i].TxBytes += 1500
			flows[i].TxPackets++
			flows[i].RxBytes += 52
			flows[i].RxPackets++
			flows[i].LastSeen = now
		}
		r := tb.Update(now, flows, socks, nil)
		ld, md = tr.Logs(r.Report), tr.Metrics(r.Report)
		now = now.Add(2 * time.Second)
	}
	for range 3 {
		flush()
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		flush()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	runtime.GC()
	var live runtime.MemStats
	runtime.ReadMemStats(&live)
	if ld.LogRecordCount() != n || md.DataPointCount() == 0 {
		b.Fatalf("records %d, points %d", ld.LogRecordCount(), md.DataPointCount())
	}
	b.ReportMetric(float64(live.HeapInuse)/(1<<20), "heapinuse-MB")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/n, "B/flow")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N)/n, "allocs/flow")
}

// BenchmarkHTTPSpans is one second's report of 10k HTTP exchanges (both
// ends of 5k requests on the node): traces and the duration histograms.
func BenchmarkHTTPSpans(b *testing.B) {
	tr := New(t0, Config{NodeName: "node", HostName: "host", SeriesIdleTimeout: 5 * time.Minute, MaxSeries: 100000})
	client, server := httpPair()
	r := observed.Report{Time: t1, Partial: true, HTTP: make([]observed.HTTPExchange, 0, 10000)}
	for i := range 5000 {
		c, s := client, server
		c.Seq, s.Seq = uint32(i)*1000, uint32(i)*1000
		c.StatusCode, s.StatusCode = 200, 200
		r.HTTP = append(r.HTTP, c, s)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = tr.Traces(r)
		_ = tr.Metrics(r)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r.HTTP)), "ns/span")
}

// BenchmarkHTTPSpansPdataOnly builds spans like BenchmarkHTTPSpans' (two
// resources of 5k spans, the same attributes) with nothing but pdata
// calls: the floor of building them through pdata, one allocation per
// attribute value plus the span and its attribute array.
func BenchmarkHTTPSpansPdataOnly(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		td := ptrace.NewTraces()
		for w := range 2 {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr(semconv.AttrServiceName, "svc")
			spans := rs.ScopeSpans().AppendEmpty().Spans()
			spans.EnsureCapacity(5000)
			for i := range 5000 {
				sp := spans.AppendEmpty()
				sp.SetName("GET")
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetTraceID(pcommon.TraceID{1, byte(i), byte(i >> 8)})
				sp.SetSpanID(pcommon.SpanID{1, byte(i), byte(i >> 8)})
				sp.SetStartTimestamp(pcommon.Timestamp(i))
				sp.SetEndTimestamp(pcommon.Timestamp(i + 1))
				m := sp.Attributes()
				m.EnsureCapacity(13 - w)
				m.PutStr(semconv.AttrHTTPMethod, "GET")
				m.PutStr(semconv.AttrURLPath, "/api/orders")
				m.PutStr(semconv.AttrURLScheme, "http")
				m.PutInt(semconv.AttrHTTPStatus, 200)
				m.PutStr(semconv.AttrServerAddr, "orders.default.svc")
				m.PutInt(semconv.AttrServerPort, 80)
				if w == 0 {
					m.PutStr(semconv.AttrClientAddr, "10.244.1.5")
				}
				m.PutStr(semconv.AttrPeerAddr, "10.244.1.5")
				m.PutInt(semconv.AttrNetworkPeerPort, 43210)
				m.PutStr(semconv.AttrUserAgent, "curl/8.5.0")
				m.PutStr(semconv.AttrProtocolVersion, "1.1")
				m.PutInt(semconv.AttrHTTPReqBodySize, 0)
				m.PutInt(semconv.AttrHTTPRespBodySize, 19)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/span")
}
