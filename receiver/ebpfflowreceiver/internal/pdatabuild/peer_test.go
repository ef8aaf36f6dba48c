package pdatabuild

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/clusterview"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// fakePeers is a cluster view with fixed answers.
type fakePeers struct {
	addrs    map[netip.Addr]clusterview.Endpoint
	pods     map[string]*clusterview.Pod
	resolved int // lookups counted
}

func (f *fakePeers) Resolve(proto uint8, a netip.AddrPort, at time.Time) clusterview.Endpoint {
	f.resolved++
	return f.Lookup(proto, a, at)
}

func (f *fakePeers) Lookup(_ uint8, a netip.AddrPort, _ time.Time) clusterview.Endpoint {
	return f.addrs[a.Addr().Unmap()]
}

func (f *fakePeers) PodByUID(uid string) *clusterview.Pod { return f.pods[uid] }

func (f *fakePeers) InCluster(a netip.Addr) bool {
	return netip.MustParsePrefix("10.0.0.0/8").Contains(a)
}

var (
	checkoutPod = &clusterview.Pod{UID: podA.PodUID, Name: "checkout-7d9c5b8f4-x2x9k", Namespace: "shop", Node: "node-1",
		Workload: clusterview.Workload{Kind: clusterview.KindDeployment, Name: "checkout"}}
	cartPod = &clusterview.Pod{UID: podB.PodUID, Name: "cart-0", Namespace: "shop", Node: "node-1",
		Workload: clusterview.Workload{Kind: clusterview.KindStatefulSet, Name: "cart"}}
	paymentsPod = &clusterview.Pod{UID: "p-uid", Name: "payments-v1-5c6d7e8f9-abcde", Namespace: "shop", Node: "node-2",
		Workload: clusterview.Workload{Kind: clusterview.KindDeployment, Name: "payments-v1"}}
	corednsPod = &clusterview.Pod{UID: "d-uid", Name: "coredns-6f7d8c9b5-q1w2e", Namespace: "kube-system", Node: "node-3",
		Workload: clusterview.Workload{Kind: clusterview.KindDeployment, Name: "coredns"}}
	paymentsSvc = &clusterview.Service{Name: "payments", Namespace: "shop"}
	kubeDNSSvc  = &clusterview.Service{Name: "kube-dns", Namespace: "kube-system"}
)

func newFakePeers() *fakePeers {
	ep := func(p *clusterview.Pod) clusterview.Endpoint { return clusterview.Endpoint{Pod: p, Node: p.Node} }
	return &fakePeers{
		addrs: map[netip.Addr]clusterview.Endpoint{
			netip.MustParseAddr("10.244.1.5"):   ep(checkoutPod),
			netip.MustParseAddr("10.244.1.7"):   ep(cartPod),
			netip.MustParseAddr("10.244.2.9"):   ep(paymentsPod),
			netip.MustParseAddr("10.244.3.3"):   ep(corednsPod),
			netip.MustParseAddr("10.96.0.50"):   {Service: paymentsSvc},
			netip.MustParseAddr("10.96.0.10"):   {Service: kubeDNSSvc},
			netip.MustParseAddr("192.168.1.20"): {Node: "node-2"},
		},
		pods: map[string]*clusterview.Pod{podA.PodUID: checkoutPod, podB.PodUID: cartPod},
	}
}

// k8sReport: traffic of a node in a cluster whose view names the peers.
func k8sReport() observed.Report {
	return observed.Report{
		Time: t1,
		Flows: []observed.Flow{
			{ // checkout → payments Service, answered by a payments-v1 pod on node-2
				Local: podA, Transport: observed.TransportTCP,
				Source: ap("10.244.1.5:43210"), Dest: ap("10.96.0.50:80"), Backend: ap("10.244.2.9:8080"), LocalRole: observed.RoleClient,
				SourceBytes: 1500, SourcePackets: 12, DestBytes: 64000, DestPackets: 50,
				State: observed.TCPClose, CloseCause: observed.CloseFIN, SRTT: 2 * time.Millisecond, Scope: observed.ScopeCluster,
				Start: t0.Add(2 * time.Second), End: t1.Add(-time.Second), Closed: true,
			},
			{ // checkout → cart on this node, seen from cart's socket: counted by the client's record
				Local: podB, Remote: &podA, Transport: observed.TransportTCP,
				Source: ap("10.244.1.5:43300"), Dest: ap("10.244.1.7:6379"), LocalRole: observed.RoleServer,
				SourceBytes: 300, SourcePackets: 3, DestBytes: 200, DestPackets: 2,
				State: observed.TCPEstablished, SRTT: 90 * time.Microsecond, Scope: observed.ScopeNode,
				Start: t0.Add(3 * time.Second), End: t1.Add(-time.Second),
			},
			{ // the internet → cart: only the server's node sees it
				Local: podB, Transport: observed.TransportTCP,
				Source: ap("203.0.113.7:50000"), Dest: ap("10.244.1.7:6379"), LocalRole: observed.RoleServer,
				SourceBytes: 100, SourcePackets: 2, DestBytes: 80, DestPackets: 1,
				State: observed.TCPEstablished, Scope: observed.ScopeNode,
				Start: t0.Add(4 * time.Second), End: t1.Add(-time.Second),
			},
			{ // a process of the node → the internet
				Local: curl, Transport: observed.TransportTCP,
				Source: ap("192.168.1.10:51234"), Dest: ap("93.184.216.34:443"), LocalRole: observed.RoleClient,
				SourceBytes: 2100, SourcePackets: 14, DestBytes: 18000, DestPackets: 16,
				State: observed.TCPEstablished, SRTT: 25 * time.Millisecond, Scope: observed.ScopeExternal,
				Start: t0.Add(-time.Minute), End: t1.Add(-time.Second), // opened before this interval
			},
			{ // checkout → a cluster address nothing has, refused
				Local: podA, Transport: observed.TransportTCP,
				Source: ap("10.244.1.5:43400"), Dest: ap("10.244.9.9:80"), LocalRole: observed.RoleClient,
				SourceBytes: 60, SourcePackets: 1, DestBytes: 40, DestPackets: 1,
				State: observed.TCPClose, CloseCause: observed.CloseRefused, Scope: observed.ScopeCluster,
				Start: t0.Add(5 * time.Second), End: t0.Add(5 * time.Second), Closed: true,
			},
			{ // checkout → node-2's kubelet
				Local: podA, Transport: observed.TransportTCP,
				Source: ap("10.244.1.5:43500"), Dest: ap("192.168.1.20:10250"), LocalRole: observed.RoleClient,
				SourceBytes: 70, SourcePackets: 1, DestBytes: 70, DestPackets: 1,
				State: observed.TCPEstablished, Scope: observed.ScopeCluster,
				Start: t0.Add(6 * time.Second), End: t0.Add(6 * time.Second),
			},
		},
		Drops: []observed.Drop{
			{ // the reply of payments to checkout dropped: counted on checkout → payments-v1:8080
				Reason: "NETFILTER_DROP", Location: "nf_hook_slow", Transport: observed.TransportTCP,
				Source: ap("10.244.2.9:8080"), Dest: ap("10.244.1.5:43210"), Interface: "eth0",
				Count: 3, Bytes: 180, Time: t1.Add(-2 * time.Second),
			},
		},
		DNS: []observed.DNSLookup{
			{
				Local: podA, Transport: observed.TransportUDP, Client: ap("10.244.1.5:38001"), Server: ap("10.96.0.10:53"), Backend: ap("10.244.3.3:53"),
				ID: 7, Name: "nope.shop.svc.cluster.local", Type: "AAAA", RCode: "NXDOMAIN",
				Start: t0.Add(6 * time.Second), Duration: 900 * time.Microsecond,
			},
		},
	}
}

func k8sTranslator(peers *fakePeers) *Builder {
	return newTranslator(func(c *Config) { c.Peers = peers })
}

func TestPeersLogsGolden(t *testing.T) {
	peers := newFakePeers()
	checkLogs(t, "logs_k8s.yaml", k8sTranslator(peers).Logs(k8sReport()))
	// One lookup per flow's far end, two per drop, one per DNS lookup;
	// a Service's backend is looked up without counting.
	assert.Equal(t, 6+2+1, peers.resolved)
}

func TestPeersMetricsGolden(t *testing.T) {
	peers := newFakePeers()
	checkMetrics(t, "metrics_k8s.yaml", k8sTranslator(peers).Metrics(k8sReport()))
	assert.Equal(t, 0, peers.resolved, "metrics count no lookups: the log records do")
}

// recordsByEvent collects each record's attributes by event name.
func recordsByEvent(ld plog.Logs) map[string][]pcommon.Map {
	out := map[string][]pcommon.Map{}
	forEachRecord(ld, func(_ pcommon.Resource, lr plog.LogRecord) {
		out[lr.EventName()] = append(out[lr.EventName()], lr.Attributes())
	})
	return out
}

func strAttr(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

func TestPeersOnRecords(t *testing.T) {
	recs := recordsByEvent(k8sTranslator(newFakePeers()).Logs(k8sReport()))
	require.Len(t, recs[semconv.EventFlow], 6)
	// Records are grouped by resource: find each by its source port.
	flows := map[string]pcommon.Map{}
	for _, m := range recs[semconv.EventFlow] {
		flows[strAttr(m, semconv.AttrSrcPort)] = m
	}
	svc := flows["43210"]
	for k, want := range map[string]string{
		"destination.k8s.service.name":              "payments",
		"destination.k8s.namespace.name":            "shop",
		"destination.k8s.workload.name":             "payments-v1",
		"destination.k8s.workload.kind":             "Deployment",
		"destination.k8s.node.name":                 "node-2",
		"ebpfflow.destination.backend.address":      "10.244.2.9",
		"ebpfflow.destination.backend.port":         "8080",
		"ebpfflow.destination.backend.k8s.pod.name": "payments-v1-5c6d7e8f9-abcde",
		"destination.address":                       "10.96.0.50", // as the client addressed it
		"source.k8s.pod.name":                       "",           // the resource's (k8sattributes)
	} {
		assert.Equal(t, want, strAttr(svc, k), k)
	}
	assert.Equal(t, "checkout-7d9c5b8f4-x2x9k", strAttr(flows["43300"], "source.k8s.pod.name"))
	assert.Equal(t, "checkout", strAttr(flows["43300"], "source.k8s.workload.name"))
	assert.Equal(t, "", strAttr(flows["43300"], "destination.k8s.pod.name"))
	assert.Equal(t, "", strAttr(flows["50000"], "source.k8s.pod.name"), "an external client has no name")
	assert.Equal(t, "node-2", strAttr(flows["43500"], "destination.k8s.node.name"))
	assert.Equal(t, "", strAttr(flows["43500"], "destination.k8s.pod.name"))

	drop := recs[semconv.EventDrop][0]
	assert.Equal(t, "payments-v1-5c6d7e8f9-abcde", strAttr(drop, "source.k8s.pod.name"))
	assert.Equal(t, "checkout-7d9c5b8f4-x2x9k", strAttr(drop, "destination.k8s.pod.name"))

	dns := recs[semconv.EventDNS][0]
	assert.Equal(t, "kube-dns", strAttr(dns, "destination.k8s.service.name"))
	assert.Equal(t, "coredns", strAttr(dns, "destination.k8s.workload.name"))
	assert.Equal(t, "coredns-6f7d8c9b5-q1w2e", strAttr(dns, "ebpfflow.destination.backend.k8s.pod.name"))

	// The DNS span carries the same.
	td := k8sTranslator(newFakePeers()).Traces(k8sReport())
	span := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, "coredns", strAttr(span.Attributes(), "destination.k8s.workload.name"))
}

// TestPeerAttrCountExact keeps the preallocation honest with peers.
func TestPeerAttrCountExact(t *testing.T) {
	b := k8sTranslator(newFakePeers())
	r := k8sReport()
	for i := range r.Flows {
		f := &r.Flows[i]
		side, p := b.flowPeer(f, true)
		m := pcommon.NewMap()
		m.PutStr(semconv.AttrEventName, semconv.EventFlow)
		b.putFlow(m, f)
		putSide(m, side, &p)
		assert.Equal(t, flowAttrCount(f)+p.attrCount(side == semconv.SideDestination), m.Len(), "flow %d", i)
	}
	for i := range r.Drops {
		d := &r.Drops[i]
		src, dst := b.peerOf(d.Transport, d.Source, netip.AddrPort{}, d.Time), b.peerOf(d.Transport, d.Dest, netip.AddrPort{}, d.Time)
		m := pcommon.NewMap()
		m.PutStr(semconv.AttrEventName, semconv.EventDrop)
		b.putDrop(m, d)
		putSide(m, semconv.SideSource, &src)
		putSide(m, semconv.SideDestination, &dst)
		assert.Equal(t, dropAttrCount(d)+src.attrCount(false)+dst.attrCount(true), m.Len(), "drop %d", i)
	}
	for i := range r.DNS {
		l := &r.DNS[i]
		p := b.dnsPeer(l)
		m := pcommon.NewMap()
		b.putDNS(m, l)
		putSide(m, semconv.SideDestination, &p)
		assert.Equal(t, dnsAttrCount(l)-1+p.attrCount(true), m.Len(), "dns %d", i)
	}
}

// edgePoints returns the ebpfflow.edge.* data points by metric, each as
// its attributes in a string map plus its value.
type edgePoint struct {
	attrs map[string]string
	value float64
	count uint64
}

func edgePoints(md pmetric.Metrics) map[string][]edgePoint {
	out := map[string][]edgePoint{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			add := func(attrs pcommon.Map, v float64, c uint64) {
				a := map[string]string{}
				attrs.Range(func(k string, v pcommon.Value) bool { a[k] = v.AsString(); return true })
				out[m.Name()] = append(out[m.Name()], edgePoint{a, v, c})
			}
			switch m.Type() {
			case pmetric.MetricTypeSum:
				for k := 0; k < m.Sum().DataPoints().Len(); k++ {
					dp := m.Sum().DataPoints().At(k)
					add(dp.Attributes(), float64(dp.IntValue()), 0)
				}
			case pmetric.MetricTypeHistogram:
				for k := 0; k < m.Histogram().DataPoints().Len(); k++ {
					dp := m.Histogram().DataPoints().At(k)
					add(dp.Attributes(), dp.Sum(), dp.Count())
				}
			}
		}
	}
	return out
}

func TestEdgeMetrics(t *testing.T) {
	md := k8sTranslator(newFakePeers()).Metrics(k8sReport())
	pts := edgePoints(md)
	type key struct{ client, server, port, dir string }
	bytes := map[key]float64{}
	for _, p := range pts[semconv.MetricEdgeBytes] {
		bytes[key{p.attrs["client"], p.attrs["server"], p.attrs["server.port"], p.attrs["network.io.direction"]}] = p.value
	}
	assert.Equal(t, map[key]float64{
		// Through the Service: the backend's workload and port.
		{"checkout", "payments-v1", "8080", "transmit"}: 1500, {"checkout", "payments-v1", "8080", "receive"}: 64000,
		// checkout → cart is counted by checkout's record, which this node
		// would emit too; cart's own record of it is not counted.
		{"external", "cart", "6379", "transmit"}: 100, {"external", "cart", "6379", "receive"}: 80,
		{"node-1", "external", "443", "transmit"}: 2100, {"node-1", "external", "443", "receive"}: 18000,
		{"checkout", "unknown", "80", "transmit"}: 60, {"checkout", "unknown", "80", "receive"}: 40,
		{"checkout", "node-2", "10250", "transmit"}: 70, {"checkout", "node-2", "10250", "receive"}: 70,
	}, bytes)
	for _, p := range pts[semconv.MetricEdgeBytes] {
		if p.attrs["server"] == "payments-v1" {
			assert.Equal(t, map[string]string{
				"client": "checkout", "client.k8s.namespace.name": "shop", "client.k8s.workload.kind": "Deployment",
				"server": "payments-v1", "server.k8s.namespace.name": "shop", "server.k8s.workload.kind": "Deployment",
				"server.k8s.service.name": "payments", "server.port": "8080", "network.transport": "tcp",
				"network.io.direction": p.attrs["network.io.direction"],
			}, p.attrs)
		}
	}
	// Connections opened in the interval (the node's curl connection was
	// already open), failures, RTT from clients only.
	conns := map[string]float64{}
	for _, p := range pts[semconv.MetricEdgeConnections] {
		conns[p.attrs["client"]+"→"+p.attrs["server"]] += p.value
	}
	assert.Equal(t, map[string]float64{"checkout→payments-v1": 1, "external→cart": 1, "checkout→unknown": 1, "checkout→node-2": 1}, conns)
	require.Len(t, pts[semconv.MetricEdgeConnFailures], 1)
	assert.Equal(t, "refused", pts[semconv.MetricEdgeConnFailures][0].attrs["ebpfflow.flow.close_cause"])
	rtt := map[string]float64{}
	for _, p := range pts[semconv.MetricEdgeRTT] {
		rtt[p.attrs["client"]+"→"+p.attrs["server"]] = p.value
	}
	assert.Equal(t, map[string]float64{"checkout→payments-v1": 0.002, "node-1→external": 0.025}, rtt)
	// The dropped reply counts on its request's edge.
	require.Len(t, pts[semconv.MetricEdgeDrops], 1)
	d := pts[semconv.MetricEdgeDrops][0]
	assert.Equal(t, []string{"checkout", "payments-v1", "8080", "NETFILTER_DROP"}, []string{d.attrs["client"], d.attrs["server"], d.attrs["server.port"], d.attrs["ebpfflow.drop.reason"]})
	assert.Equal(t, 3.0, d.value)
	// DNS: the asking workload → the resolver's, with the error.
	require.Len(t, pts[semconv.MetricEdgeDNSLookups], 1)
	l := pts[semconv.MetricEdgeDNSLookups][0]
	assert.Equal(t, []string{"checkout", "coredns", "kube-dns", "53", "NXDOMAIN"}, []string{l.attrs["client"], l.attrs["server"], l.attrs["server.k8s.service.name"], l.attrs["server.port"], l.attrs["error.type"]})
	// Edge metrics are the node's: one resource without workload identity.
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		ms := rm.ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if name := ms.At(j).Name(); len(name) > 13 && name[:14] == "ebpfflow.edge." {
				_, hasPod := rm.Resource().Attributes().Get(semconv.AttrPodUID)
				assert.False(t, hasPod, "%s on a pod's resource", name)
			}
		}
	}
	// The per-workload metrics name the far end's workload, not its pod.
	for _, p := range edgePoints(md)[semconv.MetricFlowBytes] {
		assert.NotContains(t, p.attrs, "source.k8s.pod.uid")
		if p.attrs["ebpfflow.flow.local_role"] == "server" && p.attrs["destination.port"] == "6379" && p.attrs["source.k8s.workload.name"] != "" {
			assert.Equal(t, "checkout", p.attrs["source.k8s.workload.name"])
		}
	}
}
