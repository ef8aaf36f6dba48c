package pdatabuild

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) // receiver start
	t1 = t0.Add(10 * time.Second)                       // first flush
	t2 = t1.Add(10 * time.Second)                       // second flush

	podA = observed.Workload{
		CgroupID:    4101,
		CgroupPath:  "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c2d3e_8a9b_4c5d_9e0f_112233445566.slice/cri-containerd-aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888.scope",
		ContainerID: "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888",
		PodUID:      "6f1c2d3e-8a9b-4c5d-9e0f-112233445566",
		PodIP:       netip.MustParseAddr("10.244.1.5"),
		Service:     "checkout",
	}
	podB = observed.Workload{
		CgroupID:    4102,
		CgroupPath:  "/kubepods/besteffort/pod0a0b0c0d-1111-2222-3333-444455556666/cccc1111dddd2222eeee3333ffff4444aaaa5555bbbb6666cccc7777dddd8888",
		ContainerID: "cccc1111dddd2222eeee3333ffff4444aaaa5555bbbb6666cccc7777dddd8888",
		PodUID:      "0a0b0c0d-1111-2222-3333-444455556666",
		PodIP:       netip.MustParseAddr("10.244.1.7"),
	}
	nginx = observed.Workload{CgroupID: 77, CgroupPath: "/system.slice/nginx.service", PID: 812, Executable: "nginx"}
	curl  = observed.Workload{CgroupID: 91, CgroupPath: "/user.slice/user-0.slice/session-3.scope", PID: 4242, Executable: "curl"}
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// firstReport covers every shape a flow or drop can take.
func firstReport() observed.Report {
	return observed.Report{
		Time: t1,
		Flows: []observed.Flow{
			{ // pod A -> pod B on this node, seen from the client socket
				Local: podA, Remote: &podB, Transport: observed.TransportTCP,
				Source: ap("10.244.1.5:43210"), Dest: ap("10.244.1.7:8080"), LocalRole: observed.RoleClient,
				SourceBytes: 1500, SourcePackets: 12, DestBytes: 64000, DestPackets: 50,
				State: observed.TCPEstablished, SRTT: 120 * time.Microsecond, Scope: observed.ScopeNode,
				Start: t0.Add(2 * time.Second), End: t1.Add(-time.Second),
			},
			{ // the same connection seen from the server socket
				Local: podB, Remote: &podA, Transport: observed.TransportTCP,
				Source: ap("10.244.1.5:43210"), Dest: ap("10.244.1.7:8080"), LocalRole: observed.RoleServer,
				SourceBytes: 1500, SourcePackets: 12, DestBytes: 64000, DestPackets: 50,
				State: observed.TCPEstablished, SRTT: 90 * time.Microsecond, Scope: observed.ScopeNode,
				Start: t0.Add(2 * time.Second), End: t1.Add(-time.Second),
			},
			{ // host process to the internet, closed with FIN
				Local: curl, Transport: observed.TransportTCP,
				Source: ap("192.168.1.10:51234"), Dest: ap("93.184.216.34:443"), LocalRole: observed.RoleClient,
				SourceBytes: 2100, SourcePackets: 14, DestBytes: 18000, DestPackets: 16,
				State: observed.TCPClose, CloseCause: observed.CloseFIN, SRTT: 25 * time.Millisecond,
				Retransmits: 2, Scope: observed.ScopeExternal,
				Start: t0.Add(3 * time.Second), End: t0.Add(4 * time.Second), Closed: true,
			},
			{ // refused connect on loopback
				Local: curl, Transport: observed.TransportTCP,
				Source: ap("127.0.0.1:40000"), Dest: ap("127.0.0.1:9"), LocalRole: observed.RoleClient,
				SourceBytes: 60, SourcePackets: 1, DestBytes: 40, DestPackets: 1,
				State: observed.TCPClose, CloseCause: observed.CloseRefused, Resets: 1, Scope: observed.ScopeNode,
				Start: t0.Add(5 * time.Second), End: t0.Add(5 * time.Second), Closed: true,
			},
			{ // DNS to a cluster Service; a packet of it was dropped
				Local: podA, Transport: observed.TransportUDP,
				Source: ap("10.244.1.5:38000"), Dest: ap("10.96.0.10:53"), LocalRole: observed.RoleClient,
				SourceBytes: 70, SourcePackets: 1, Dropped: true, Scope: observed.ScopeCluster,
				Start: t0.Add(6 * time.Second), End: t0.Add(6 * time.Second),
			},
			{ // IPv6 client to a host server
				Local: nginx, Transport: observed.TransportTCP,
				Source: ap("[2001:db8::7]:50000"), Dest: ap("[2001:db8::1]:80"), LocalRole: observed.RoleServer,
				SourceBytes: 400, SourcePackets: 3, DestBytes: 900, DestPackets: 2,
				State: observed.TCPTimeWait, SRTT: 3 * time.Millisecond, Scope: observed.ScopeNode,
				Start: t0.Add(7 * time.Second), End: t0.Add(8 * time.Second),
			},
		},
		Drops: []observed.Drop{
			{
				Local: podA, Reason: "NETFILTER_DROP", Location: "nf_hook_slow", Transport: observed.TransportTCP,
				Source: ap("10.244.1.5:43300"), Dest: ap("10.244.1.7:9090"), Interface: "veth6f1c2d3e",
				Count: 3, Bytes: 180, Time: t1.Add(-2 * time.Second),
			},
			{ // no local socket: the resource is the node alone
				Reason: "NO_SOCKET", Location: "tcp_v4_rcv", Transport: observed.TransportTCP,
				Source: ap("203.0.113.9:5555"), Dest: ap("192.168.1.10:23"), Interface: "eth0",
				Count: 1, Bytes: 60, Time: t1.Add(-3 * time.Second),
			},
			{ // ICMPv6: addresses but no ports
				Reason: "IP_INHDR", Location: "0xffffffffc0a81234", Transport: observed.TransportICMPv6,
				Source: netip.AddrPortFrom(netip.MustParseAddr("fe80::1"), 0), Dest: netip.AddrPortFrom(netip.MustParseAddr("ff02::1"), 0),
				Interface: "eth0", Count: 2, Bytes: 144, Time: t1.Add(-4 * time.Second),
			},
		},
		DNS: dnsLookups(),
	}
}

// dnsLookups covers every shape a lookup can take.
func dnsLookups() []observed.DNSLookup {
	return []observed.DNSLookup{
		{ // answered, through a CNAME
			Local: podA, Transport: observed.TransportUDP, Client: ap("10.244.1.5:38000"), Server: ap("10.96.0.10:53"),
			ID: 4242, Name: "api.shop.svc.cluster.local", Type: "A", RCode: "NOERROR",
			Answers: []string{"10.96.7.7"}, Records: []string{"api-v2.shop.svc.cluster.local."},
			Start: t0.Add(6 * time.Second), Duration: 1250 * time.Microsecond,
		},
		{ // NXDOMAIN from the same pod
			Local: podA, Transport: observed.TransportUDP, Client: ap("10.244.1.5:38001"), Server: ap("10.96.0.10:53"),
			ID: 7, Name: "nope.shop.svc.cluster.local", Type: "AAAA", RCode: "NXDOMAIN",
			Start: t0.Add(6 * time.Second), Duration: 900 * time.Microsecond,
		},
		{ // never answered, retried once by the same socket
			Local: curl, Transport: observed.TransportUDP, Client: ap("192.168.1.10:40001"), Server: ap("192.168.1.1:53"),
			ID: 999, Name: "example.org", Type: "A", RCode: "TIMEOUT", Retransmits: 1,
			Start: t0.Add(1 * time.Second), Duration: 5 * time.Second,
		},
		{ // over TCP after truncation, answered from another address than asked
			Local: curl, Transport: observed.TransportTCP, Client: ap("[2001:db8::7]:50100"), Server: ap("[2001:db8::53]:53"), Responder: ap("[2001:db8::54]:53"),
			ID: 31337, Name: "big.example.org", Type: "TXT", RCode: "NOERROR", Truncated: true,
			Records: []string{`"v=spf1 -all"`, `"a" "b"`},
			Start:   t0.Add(8 * time.Second), Duration: 32 * time.Millisecond,
		},
	}
}

// secondReport continues some flows, and starts one new series.
func secondReport() observed.Report {
	r := firstReport()
	return observed.Report{
		Time: t2,
		Flows: []observed.Flow{
			func() observed.Flow { // more traffic on the pod A -> pod B connection
				f := r.Flows[0]
				f.SourceBytes, f.SourcePackets, f.DestBytes, f.DestPackets = 500, 4, 1000, 3
				f.SRTT = 3 * time.Millisecond
				f.Retransmits = 1
				f.End = t2.Add(-time.Second)
				return f
			}(),
			func() observed.Flow { // the same connection, closed by a reset from pod B
				f := r.Flows[1]
				f.SourceBytes, f.SourcePackets, f.DestBytes, f.DestPackets = 500, 4, 1000, 3
				f.SRTT = 0
				f.State, f.CloseCause, f.Resets, f.Closed = observed.TCPClose, observed.CloseRSTSent, 1, true
				f.End = t2.Add(-time.Second)
				return f
			}(),
			{ // a connect that timed out: new series in the second interval
				Local: podA, Transport: observed.TransportTCP,
				Source: ap("10.244.1.5:43500"), Dest: ap("10.0.0.99:5432"), LocalRole: observed.RoleClient,
				SourceBytes: 180, SourcePackets: 3,
				State: observed.TCPClose, CloseCause: observed.CloseTimeout, Scope: observed.ScopeCluster,
				Start: t1.Add(time.Second), End: t2.Add(-time.Second), Closed: true,
			},
		},
		DNS: []observed.DNSLookup{func() observed.DNSLookup { // the A lookup again: same series
			l := r.DNS[0]
			l.ID, l.Start, l.Duration = 4243, t1.Add(3*time.Second), 40*time.Millisecond
			return l
		}()},
	}
}

func goldenPath(name string) string { return filepath.Join("testdata", name) }

func checkLogs(t *testing.T, name string, got plog.Logs) {
	t.Helper()
	path := goldenPath(name)
	if *update {
		require.NoError(t, golden.WriteLogsToFile(path, got))
	}
	want, err := golden.ReadLogs(path)
	require.NoError(t, err)
	require.NoError(t, plogtest.CompareLogs(want, got))
}

func checkMetrics(t *testing.T, name string, got pmetric.Metrics) {
	t.Helper()
	path := goldenPath(name)
	if *update {
		// Not golden.WriteMetricsToFile: it sorts and normalises timestamps,
		// and both the emission order and exact start times are under test.
		b, err := golden.MarshalMetricsYAML(got)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o600))
	}
	want, err := golden.ReadMetrics(path)
	require.NoError(t, err)
	require.NoError(t, pmetrictest.CompareMetrics(want, got))
}

// testConfig is the receiver's defaults (5 minutes of idleness, 100000
// series) on node-1.
func testConfig() Config {
	return Config{NodeName: "node-1", HostName: "node-1.example", ScopeVersion: "0.1.0-test",
		SeriesIdleTimeout: 5 * time.Minute, MaxSeries: 100000}
}

func newTranslator(edit ...func(*Config)) *Builder {
	cfg := testConfig()
	for _, e := range edit {
		e(&cfg)
	}
	return New(t0, cfg)
}

func TestLogsGolden(t *testing.T) {
	checkLogs(t, "logs.yaml", newTranslator().Logs(firstReport()))
}

func TestMetricsGolden(t *testing.T) {
	tr := newTranslator()
	checkMetrics(t, "metrics_first.yaml", tr.Metrics(firstReport()))
	checkMetrics(t, "metrics_second.yaml", tr.Metrics(secondReport()))
}

func TestLogsEventNameMirrored(t *testing.T) {
	ld := newTranslator().Logs(firstReport())
	n := 0
	forEachRecord(ld, func(_ pcommon.Resource, lr plog.LogRecord) {
		n++
		v, ok := lr.Attributes().Get(semconv.AttrEventName)
		require.True(t, ok)
		assert.Equal(t, lr.EventName(), v.Str())
		assert.Contains(t, []string{semconv.EventFlow, semconv.EventDrop, semconv.EventDNS}, lr.EventName())
		if lr.EventName() != semconv.EventDNS { // a lookup's time is its outcome's
			assert.Equal(t, pcommon.NewTimestampFromTime(t1), lr.Timestamp())
		}
		assert.Equal(t, pcommon.NewTimestampFromTime(t1), lr.ObservedTimestamp())
	})
	assert.Equal(t, 9+len(dnsLookups()), n)
}

func TestLogsResourcePerWorkload(t *testing.T) {
	ld := newTranslator().Logs(firstReport())
	// pod A, pod B, curl, nginx, and the node for drops without a socket.
	require.Equal(t, 5, ld.ResourceLogs().Len())
	for i := range ld.ResourceLogs().Len() {
		res := ld.ResourceLogs().At(i).Resource().Attributes()
		v, _ := res.Get(semconv.AttrNodeName)
		assert.Equal(t, "node-1", v.Str())
		v, _ = res.Get(semconv.AttrHostName)
		assert.Equal(t, "node-1.example", v.Str())
	}
	podRes := ld.ResourceLogs().At(0).Resource().Attributes()
	assert.Equal(t, map[string]any{
		semconv.AttrContainerID: podA.ContainerID,
		semconv.AttrPodUID:      podA.PodUID,
		semconv.AttrPodIP:       "10.244.1.5",
		semconv.AttrNodeName:    "node-1",
		semconv.AttrHostName:    "node-1.example",
		semconv.AttrCgroupPath:  podA.CgroupPath,
		semconv.AttrServiceName: "checkout",
	}, podRes.AsRaw())
}

func TestLogsFlowAttributes(t *testing.T) {
	ld := newTranslator().Logs(firstReport())
	var open, refused, udp map[string]any
	forEachRecord(ld, func(_ pcommon.Resource, lr plog.LogRecord) {
		if lr.EventName() != semconv.EventFlow {
			return
		}
		a := lr.Attributes().AsRaw()
		switch {
		case a[semconv.AttrDstPort] == int64(8080) && a[semconv.AttrFlowLocalRole] == "client":
			open = a
		case a[semconv.AttrFlowCloseCause] == "refused":
			refused = a
		case a[semconv.AttrTransport] == "udp":
			udp = a
		}
	})
	require.NotNil(t, open)
	assert.NotContains(t, open, semconv.AttrFlowCloseCause, "close_cause is absent while open")
	assert.NotContains(t, open, semconv.AttrFlowFinal)
	assert.Equal(t, 120e-6, open[semconv.AttrTCPRTT])
	assert.Equal(t, podB.PodUID, open["destination.k8s.pod.uid"])
	assert.Equal(t, "forwarded", open[semconv.AttrFlowVerdict])

	require.NotNil(t, refused)
	assert.Equal(t, true, refused[semconv.AttrFlowFinal])
	assert.Equal(t, "closed", refused[semconv.AttrConnState])
	assert.NotContains(t, refused, semconv.AttrTCPRTT, "no RTT was measured")

	require.NotNil(t, udp)
	assert.Equal(t, "dropped", udp[semconv.AttrFlowVerdict])
	assert.Equal(t, "cluster", udp[semconv.AttrDestScope])
	for _, k := range []string{semconv.AttrConnState, semconv.AttrTCPRTT, semconv.AttrTCPRetransmits, semconv.AttrTCPResets} {
		assert.NotContains(t, udp, k, "TCP-only attribute on a UDP flow")
	}
}

func TestMetricsCumulative(t *testing.T) {
	tr := newTranslator()
	first := tr.Metrics(firstReport())
	second := tr.Metrics(secondReport())

	find := func(md pmetric.Metrics, podUID, name, direction string) pmetric.NumberDataPoint {
		t.Helper()
		var found []pmetric.NumberDataPoint
		forEachSumPoint(md, func(res pcommon.Map, m pmetric.Metric, dp pmetric.NumberDataPoint) {
			uid, _ := res.Get(semconv.AttrPodUID)
			dir, _ := dp.Attributes().Get(semconv.AttrIODirection)
			port, _ := dp.Attributes().Get(semconv.AttrDstPort)
			if uid.Str() == podUID && m.Name() == name && dir.Str() == direction && port.Int() == 8080 {
				found = append(found, dp)
			}
		})
		require.Len(t, found, 1)
		return found[0]
	}
	a1 := find(first, podA.PodUID, "ebpfflow.network.flow.bytes", "transmit")
	a2 := find(second, podA.PodUID, "ebpfflow.network.flow.bytes", "transmit")
	assert.Equal(t, int64(1500), a1.IntValue())
	assert.Equal(t, int64(2000), a2.IntValue())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0), a1.StartTimestamp())
	assert.Equal(t, a1.StartTimestamp(), a2.StartTimestamp(), "start time is stable")
	assert.Equal(t, pcommon.NewTimestampFromTime(t2), a2.Timestamp())

	// The server side counts the same bytes the other way round.
	b1 := find(first, podB.PodUID, "ebpfflow.network.flow.bytes", "receive")
	assert.Equal(t, int64(1500), b1.IntValue())

	// A series born in the second interval starts at the first flush.
	var failures []pmetric.NumberDataPoint
	forEachSumPoint(second, func(_ pcommon.Map, m pmetric.Metric, dp pmetric.NumberDataPoint) {
		if m.Name() == "ebpfflow.tcp.connection.failures" {
			failures = append(failures, dp)
		}
	})
	require.Len(t, failures, 2) // refused (curl, first interval) and timeout (pod A, second)
	for _, dp := range failures {
		cause, _ := dp.Attributes().Get(semconv.AttrFlowCloseCause)
		switch cause.Str() {
		case "refused":
			assert.Equal(t, pcommon.NewTimestampFromTime(t0), dp.StartTimestamp())
		case "timeout":
			assert.Equal(t, pcommon.NewTimestampFromTime(t1), dp.StartTimestamp())
		default:
			t.Fatalf("unexpected cause %q", cause.Str())
		}
		assert.Equal(t, int64(1), dp.IntValue())
	}
}

func TestMetricsNeverCarryAddressesOrClientPorts(t *testing.T) {
	tr := newTranslator()
	reports := []observed.Report{firstReport(), secondReport()}
	addrs := map[string]bool{}
	serverPorts := map[int64]bool{}
	for _, r := range reports {
		for _, f := range r.Flows {
			addrs[f.Source.Addr().String()] = true
			addrs[f.Dest.Addr().String()] = true
			serverPorts[int64(f.Dest.Port())] = true
		}
		for _, d := range r.Drops {
			addrs[d.Source.Addr().String()] = true
			addrs[d.Dest.Addr().String()] = true
		}
	}
	for _, r := range reports {
		md := tr.Metrics(r)
		check := func(metric string, attrs pcommon.Map) {
			attrs.Range(func(k string, v pcommon.Value) bool {
				if metric == "dns.lookup.duration" && k == semconv.AttrServerAddr {
					return true // the resolver: by design, a node has a handful
				}
				_, isAddr := netip.ParseAddr(v.AsString())
				assert.Error(t, isAddr, "metric attribute %s=%s is an address", k, v.AsString())
				assert.False(t, addrs[v.AsString()])
				assert.NotEqual(t, semconv.AttrSrcPort, k)
				if k == semconv.AttrDstPort {
					assert.True(t, serverPorts[v.Int()], "destination.port %d is not a server port", v.Int())
				}
				return true
			})
		}
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			sms := rms.At(i).ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					m := ms.At(k)
					switch m.Type() {
					case pmetric.MetricTypeSum:
						for l := range m.Sum().DataPoints().Len() {
							check(m.Name(), m.Sum().DataPoints().At(l).Attributes())
						}
					case pmetric.MetricTypeHistogram:
						for l := range m.Histogram().DataPoints().Len() {
							check(m.Name(), m.Histogram().DataPoints().At(l).Attributes())
						}
					default:
						t.Fatalf("unexpected metric type %v", m.Type())
					}
				}
			}
		}
	}
}

func TestMetricsHostProcessResourceHasNoPID(t *testing.T) {
	md := newTranslator().Metrics(firstReport())
	for i := range md.ResourceMetrics().Len() {
		res := md.ResourceMetrics().At(i).Resource().Attributes()
		_, ok := res.Get(semconv.AttrProcessPID)
		assert.False(t, ok, "process.pid on a metrics resource: %v", res.AsRaw())
	}
}

func TestMetricsIdleEviction(t *testing.T) {
	tr := newTranslator(func(c *Config) { c.SeriesIdleTimeout = 20 * time.Second }) // two reports 10 s apart
	flow := observed.Flow{
		Local: podA, Transport: observed.TransportUDP, LocalRole: observed.RoleClient,
		Source: ap("10.244.1.5:40000"), Dest: ap("10.244.1.9:9999"), SourceBytes: 10, SourcePackets: 1,
		Scope: observed.ScopeCluster,
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }

	md := tr.Metrics(observed.Report{Time: at(1), Flows: []observed.Flow{flow}})
	assert.Equal(t, 2, md.DataPointCount()) // bytes + packets, transmit only
	assert.EqualValues(t, 2, tr.Series())

	md = tr.Metrics(observed.Report{Time: at(2)}) // idle 1: still re-emitted
	assert.Equal(t, 2, md.DataPointCount())
	md = tr.Metrics(observed.Report{Time: at(3)}) // idle 2: forgotten
	assert.Equal(t, 0, md.DataPointCount())
	idle, limit := tr.Evicted()
	assert.EqualValues(t, 2, idle)
	assert.EqualValues(t, 0, limit)
	assert.EqualValues(t, 0, tr.Series())

	// Coming back restarts from zero with a new start time.
	md = tr.Metrics(observed.Report{Time: at(4), Flows: []observed.Flow{flow}})
	forEachSumPoint(md, func(_ pcommon.Map, m pmetric.Metric, dp pmetric.NumberDataPoint) {
		assert.Equal(t, pcommon.NewTimestampFromTime(at(3)), dp.StartTimestamp(), m.Name())
	})
	assert.Equal(t, 2, md.DataPointCount())
}

func TestMetricsSeriesLimit(t *testing.T) {
	tr := newTranslator(func(c *Config) { c.MaxSeries = 3 })
	var flows []observed.Flow
	for port := uint16(1); port <= 2; port++ {
		flows = append(flows, observed.Flow{
			Local: podA, Transport: observed.TransportUDP, LocalRole: observed.RoleClient,
			Source: ap("10.244.1.5:40000"), Dest: netip.AddrPortFrom(netip.MustParseAddr("10.244.1.9"), port),
			SourceBytes: 10, SourcePackets: 1,
		})
	}
	md := tr.Metrics(observed.Report{Time: t1, Flows: flows})
	assert.Equal(t, 3, md.DataPointCount())
	_, limit := tr.Evicted()
	assert.EqualValues(t, 1, limit)
	assert.EqualValues(t, 3, tr.Series())
}

func TestRTTHistogramBuckets(t *testing.T) {
	h := newHistogram(rttBounds)
	for _, v := range []float64{0.00005, 0.0001, 0.00011, 10, 11} {
		h.observe(v)
	}
	assert.EqualValues(t, 2, h.buckets[0], "(-inf, 100µs] holds its upper bound")
	assert.EqualValues(t, 1, h.buckets[1])
	assert.EqualValues(t, 1, h.buckets[len(rttBounds)-1], "(5, 10]")
	assert.EqualValues(t, 1, h.buckets[len(rttBounds)], "(10, +inf)")
	assert.EqualValues(t, 5, h.count)
	assert.InDelta(t, 0.00005, h.min, 1e-12)
	assert.InDelta(t, 11, h.max, 1e-12)
}

func TestRTTOneSamplePerFlowPerInterval(t *testing.T) {
	tr := newTranslator()
	md := tr.Metrics(firstReport())
	var counts []string
	forEachHistPoint(md, func(res pcommon.Map, dp pmetric.HistogramDataPoint) {
		port, ok := dp.Attributes().Get(semconv.AttrDstPort)
		if !ok {
			return // dns.lookup.duration
		}
		counts = append(counts, strconv.FormatInt(port.Int(), 10)+":"+strconv.FormatUint(dp.Count(), 10))
	})
	// pod A client, pod B server, curl (443), nginx (80); the refused connect and UDP have none.
	assert.ElementsMatch(t, []string{"8080:1", "8080:1", "443:1", "80:1"}, counts)
}

func forEachRecord(ld plog.Logs, f func(pcommon.Resource, plog.LogRecord)) {
	for i := range ld.ResourceLogs().Len() {
		rl := ld.ResourceLogs().At(i)
		for j := range rl.ScopeLogs().Len() {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := range lrs.Len() {
				f(rl.Resource(), lrs.At(k))
			}
		}
	}
}

func forEachMetric(md pmetric.Metrics, f func(res pcommon.Map, m pmetric.Metric)) {
	for i := range md.ResourceMetrics().Len() {
		rm := md.ResourceMetrics().At(i)
		for j := range rm.ScopeMetrics().Len() {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := range ms.Len() {
				f(rm.Resource().Attributes(), ms.At(k))
			}
		}
	}
}

func forEachSumPoint(md pmetric.Metrics, f func(res pcommon.Map, m pmetric.Metric, dp pmetric.NumberDataPoint)) {
	forEachMetric(md, func(res pcommon.Map, m pmetric.Metric) {
		if m.Type() != pmetric.MetricTypeSum {
			return
		}
		for i := range m.Sum().DataPoints().Len() {
			f(res, m, m.Sum().DataPoints().At(i))
		}
	})
}

func forEachHistPoint(md pmetric.Metrics, f func(res pcommon.Map, dp pmetric.HistogramDataPoint)) {
	forEachMetric(md, func(res pcommon.Map, m pmetric.Metric) {
		if m.Type() != pmetric.MetricTypeHistogram {
			return
		}
		for i := range m.Histogram().DataPoints().Len() {
			f(res, m.Histogram().DataPoints().At(i))
		}
	})
}

// TestLogBatches: the batches carry exactly the records of one Logs, each
// with its resource, none above the batch size, in report order.
func TestLogBatches(t *testing.T) {
	r := firstReport()
	r.DNS = dnsLookups()
	record := func(res pcommon.Resource, lr plog.LogRecord) string {
		return fmt.Sprint(res.Attributes().AsRaw(), lr.EventName(), lr.Timestamp(), lr.ObservedTimestamp(), lr.SeverityText(), lr.Attributes().AsRaw())
	}
	var whole []string
	forEachRecord(newTranslator().Logs(r), func(res pcommon.Resource, lr plog.LogRecord) { whole = append(whole, record(res, lr)) })
	total := len(r.Flows) + len(r.Drops) + len(r.DNS)
	require.Len(t, whole, total)
	require.Greater(t, total, 4)

	for _, size := range []int{0, 1, 3, total - 1, total, LogBatch} {
		var got []string
		var events []string
		batches := 0
		for ld := range newTranslator().LogBatches(r, size) {
			batches++
			assert.LessOrEqual(t, ld.LogRecordCount(), max(size, 1), "size %d", size)
			forEachRecord(ld, func(res pcommon.Resource, lr plog.LogRecord) {
				got = append(got, record(res, lr))
				events = append(events, lr.EventName())
			})
		}
		assert.ElementsMatch(t, whole, got, "size %d", size)
		assert.Equal(t, (total+max(size, 1)-1)/max(size, 1), batches, "size %d", size)
		// Report order across batches: flows, then drops, then lookups.
		rank := map[string]int{semconv.EventFlow: 0, semconv.EventDrop: 1, semconv.EventDNS: 2}
		if size == 1 {
			assert.True(t, slices.IsSortedFunc(events, func(a, b string) int { return rank[a] - rank[b] }), "order %v", events)
		}
	}

	// A consumer that stops early gets no more batches.
	n := 0
	for range newTranslator().LogBatches(r, 1) {
		n++
		break
	}
	assert.Equal(t, 1, n)
}
