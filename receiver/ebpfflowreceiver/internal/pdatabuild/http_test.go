package pdatabuild

import (
	"hash/fnv"
	"net/netip"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/ptracetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// The two ends of one request: pod A's client socket 10.244.1.5:43210 and
// pod B's server socket at 10.244.1.7:8080 (IPv4-mapped, as a dual-stack
// Go listener sees it), and the request's first byte at seq 1000.
func httpPair() (client, server observed.HTTPExchange) {
	ex := httpmatch.Exchange{
		Conn: 11, PID: 4242, Proto: httpmatch.Proto11, Outcome: httpmatch.OutcomeOK,
		Start: t1.Add(-time.Second), End: t1.Add(-time.Second + 2500*time.Microsecond),
		Seq: 1000, HasSeq: true, Method: "GET", Path: "/api/orders", Scheme: "http",
		ServerAddress: "orders.default.svc", UserAgent: "curl/8.5.0", StatusCode: 503,
		ReqBodySize: 0, RespBodySize: 19, GRPCStatus: -1,
	}
	client = observed.HTTPExchange{Local: podA, LocalAddr: ap("10.244.1.5:43210"), RemoteAddr: ap("10.96.0.20:80"), Exchange: ex}
	client.Role = httpmatch.RoleClient
	server = observed.HTTPExchange{Local: podB, LocalAddr: ap("[::ffff:10.244.1.7]:8080"), RemoteAddr: ap("[::ffff:10.244.1.5]:43210"), Exchange: ex}
	server.Role, server.Conn, server.PID = httpmatch.RoleServer, 12, 9
	server.Start, server.End = ex.Start.Add(100*time.Microsecond), ex.End.Add(-100*time.Microsecond)
	return client, server
}

func grpcExchange() observed.HTTPExchange {
	x := observed.HTTPExchange{Local: nginx, LocalAddr: ap("127.0.0.1:50051"), RemoteAddr: ap("127.0.0.1:51000"), Exchange: httpmatch.Exchange{
		Conn: 13, Role: httpmatch.RoleServer, Proto: httpmatch.Proto2, Outcome: httpmatch.OutcomeOK,
		Start: t1.Add(-500 * time.Millisecond), End: t1.Add(-499 * time.Millisecond), Seq: 77, HasSeq: true, StreamID: 3,
		Method: "POST", Path: "/shop.Cart/Add", Scheme: "http", ServerAddress: "localhost", ServerPort: 50051,
		UserAgent: "grpc-go/1.84.0", StatusCode: 200, ReqBodySize: 12, RespBodySize: 5,
		GRPC: true, RPCService: "shop.Cart", RPCMethod: "Add", GRPCStatus: 13,
	}}
	return x
}

func spansOf(td ptrace.Traces) []ptrace.Span {
	var out []ptrace.Span
	forEachSpan(td, func(sp ptrace.Span) { out = append(out, sp) })
	return out
}

func attr(t *testing.T, m pcommon.Map, key string) pcommon.Value {
	t.Helper()
	v, ok := m.Get(key)
	if !ok {
		t.Errorf("no %s in %v", key, m.AsRaw())
	}
	return v
}

// TestHTTPSpansJoin: the client's and the server's span of one request,
// without a traceparent, are one trace: the client span its root, the
// server span its child, whatever address family each end saw.
func TestHTTPSpansJoin(t *testing.T) {
	client, server := httpPair()
	spans := spansOf(newTranslator().Traces(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{client, server}}))
	require.Len(t, spans, 2)
	c, s := spans[0], spans[1]
	assert.Equal(t, ptrace.SpanKindClient, c.Kind())
	assert.Equal(t, ptrace.SpanKindServer, s.Kind())
	assert.Equal(t, c.TraceID(), s.TraceID())
	assert.False(t, c.TraceID().IsEmpty())
	assert.True(t, c.ParentSpanID().IsEmpty(), "the client span is the root")
	assert.Equal(t, c.SpanID(), s.ParentSpanID())
	assert.NotEqual(t, c.SpanID(), s.SpanID())

	// Another request on the same connection is another trace.
	next := client
	next.Seq += 100
	other := spansOf(newTranslator().Traces(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{next}}))[0]
	assert.NotEqual(t, c.TraceID(), other.TraceID())
	// The same request seen again (another node's collector) has the same ids.
	again := spansOf(newTranslator().Traces(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{server}}))[0]
	assert.Equal(t, s.TraceID(), again.TraceID())
	assert.Equal(t, s.SpanID(), again.SpanID())
}

// TestHTTPSpansTraceparent: with a W3C traceparent, both spans are in its
// trace, children of its parent span.
func TestHTTPSpansTraceparent(t *testing.T) {
	client, server := httpPair()
	for _, x := range []*observed.HTTPExchange{&client, &server} {
		x.HasTraceparent = true
		x.TraceID = [16]byte{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
		x.ParentSpanID = [8]byte{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}
		x.TraceFlags = 1
	}
	spans := spansOf(newTranslator().Traces(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{client, server}}))
	require.Len(t, spans, 2)
	for _, sp := range spans {
		assert.Equal(t, pcommon.TraceID(client.TraceID), sp.TraceID())
		assert.Equal(t, pcommon.SpanID(client.ParentSpanID), sp.ParentSpanID())
		assert.EqualValues(t, 1, sp.Flags())
	}
	assert.NotEqual(t, spans[0].SpanID(), spans[1].SpanID())
}

// TestHTTPSpanAttributes: names, attributes and status per the contract.
func TestHTTPSpanAttributes(t *testing.T) {
	client, server := httpPair()
	g := grpcExchange()
	spans := spansOf(newTranslator().Traces(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{client, server, g}}))
	require.Len(t, spans, 3)
	c, s, gs := spans[0], spans[1], spans[2]

	assert.Equal(t, "GET", c.Name())
	assert.Equal(t, client.Start, c.StartTimestamp().AsTime())
	assert.Equal(t, client.End, c.EndTimestamp().AsTime())
	for _, sp := range []ptrace.Span{c, s} {
		a := sp.Attributes()
		assert.Equal(t, "GET", attr(t, a, semconv.AttrHTTPMethod).Str())
		assert.Equal(t, "/api/orders", attr(t, a, semconv.AttrURLPath).Str())
		assert.Equal(t, "http", attr(t, a, semconv.AttrURLScheme).Str())
		assert.EqualValues(t, 503, attr(t, a, semconv.AttrHTTPStatus).Int())
		assert.Equal(t, "orders.default.svc", attr(t, a, semconv.AttrServerAddr).Str())
		assert.Equal(t, "curl/8.5.0", attr(t, a, semconv.AttrUserAgent).Str())
		assert.Equal(t, "1.1", attr(t, a, semconv.AttrProtocolVersion).Str())
		assert.Equal(t, "503", attr(t, a, semconv.AttrErrorType).Str())
		assert.Equal(t, ptrace.StatusCodeError, sp.Status().Code())
		assert.EqualValues(t, 19, attr(t, a, semconv.AttrHTTPRespBodySize).Int())
	}
	// Without a port in Host: the server socket's port; the peer is the other end.
	assert.EqualValues(t, 80, attr(t, c.Attributes(), semconv.AttrServerPort).Int())
	assert.Equal(t, "10.96.0.20", attr(t, c.Attributes(), semconv.AttrPeerAddr).Str())
	_, hasClient := c.Attributes().Get(semconv.AttrClientAddr)
	assert.False(t, hasClient, "client.address is the server span's")
	assert.EqualValues(t, 8080, attr(t, s.Attributes(), semconv.AttrServerPort).Int())
	assert.Equal(t, "10.244.1.5", attr(t, s.Attributes(), semconv.AttrClientAddr).Str())
	assert.Equal(t, "10.244.1.5", attr(t, s.Attributes(), semconv.AttrPeerAddr).Str())
	assert.EqualValues(t, 43210, attr(t, s.Attributes(), semconv.AttrNetworkPeerPort).Int())

	assert.Equal(t, "shop.Cart/Add", gs.Name())
	a := gs.Attributes()
	assert.Equal(t, "grpc", attr(t, a, semconv.AttrRPCSystem).Str())
	assert.Equal(t, "shop.Cart", attr(t, a, semconv.AttrRPCService).Str())
	assert.Equal(t, "Add", attr(t, a, semconv.AttrRPCMethod).Str())
	assert.EqualValues(t, 13, attr(t, a, semconv.AttrRPCGRPCStatus).Int())
	assert.Equal(t, "2", attr(t, a, semconv.AttrProtocolVersion).Str())
	assert.Equal(t, ptrace.StatusCodeError, gs.Status().Code(), "INTERNAL is a server error")
	assert.EqualValues(t, 50051, attr(t, a, semconv.AttrServerPort).Int())
}

// TestHTTPStatusRules: 4xx is an error for the client only, 5xx for both;
// a request that did not complete is an error with how it ended; a gRPC
// NOT_FOUND is the client's error, not the server's.
func TestHTTPStatusRules(t *testing.T) {
	for _, tc := range []struct {
		role      httpmatch.Role
		status    int
		outcome   httpmatch.Outcome
		grpc      int
		wantError string
	}{
		{httpmatch.RoleServer, 200, httpmatch.OutcomeOK, -1, ""},
		{httpmatch.RoleServer, 404, httpmatch.OutcomeOK, -1, ""},
		{httpmatch.RoleClient, 404, httpmatch.OutcomeOK, -1, "404"},
		{httpmatch.RoleServer, 502, httpmatch.OutcomeOK, -1, "502"},
		{httpmatch.RoleClient, 0, httpmatch.OutcomeClosed, -1, "closed"},
		{httpmatch.RoleServer, 0, httpmatch.OutcomeTimeout, -1, "timeout"},
		{httpmatch.RoleClient, 200, httpmatch.OutcomeReset, -1, "reset"},
		{httpmatch.RoleServer, 200, httpmatch.OutcomeOK, 5, ""},
		{httpmatch.RoleClient, 200, httpmatch.OutcomeOK, 5, "5"},
		{httpmatch.RoleServer, 200, httpmatch.OutcomeOK, 14, "14"},
	} {
		x := observed.HTTPExchange{Exchange: httpmatch.Exchange{Role: tc.role, StatusCode: tc.status, Outcome: tc.outcome,
			GRPC: tc.grpc >= 0, GRPCStatus: tc.grpc, Method: "GET", Start: t1, End: t1, ReqBodySize: -1, RespBodySize: -1}}
		sp := spansOf(newTranslator().Traces(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{x}}))[0]
		et, has := sp.Attributes().Get(semconv.AttrErrorType)
		if tc.wantError == "" {
			assert.False(t, has, "%+v", tc)
			assert.Equal(t, ptrace.StatusCodeUnset, sp.Status().Code(), "%+v", tc)
		} else {
			assert.Equal(t, tc.wantError, et.Str(), "%+v", tc)
			assert.Equal(t, ptrace.StatusCodeError, sp.Status().Code(), "%+v", tc)
		}
		assert.False(t, sp.TraceID().IsEmpty(), "ids are random without a sequence number")
	}
}

// TestHTTPMethodBounded: a method semconv does not name is _OTHER, with
// the method as sent on the span only.
func TestHTTPMethodBounded(t *testing.T) {
	x := observed.HTTPExchange{Exchange: httpmatch.Exchange{Role: httpmatch.RoleServer, Method: "PROPFIND", StatusCode: 207, Start: t1, End: t1, ReqBodySize: -1, RespBodySize: -1}}
	tr := newTranslator()
	sp := spansOf(tr.Traces(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{x}}))[0]
	assert.Equal(t, "HTTP", sp.Name())
	assert.Equal(t, semconv.HTTPMethodOther, attr(t, sp.Attributes(), semconv.AttrHTTPMethod).Str())
	assert.Equal(t, "PROPFIND", attr(t, sp.Attributes(), semconv.AttrHTTPMethodOriginal).Str())
	md := tr.Metrics(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{x}})
	forEachHistPoint(md, func(_ pcommon.Map, dp pmetric.HistogramDataPoint) {
		assert.Equal(t, semconv.HTTPMethodOther, attr(t, dp.Attributes(), semconv.AttrHTTPMethod).Str())
	})
}

// TestHTTPAttrCountExact keeps the preallocation honest.
func TestHTTPAttrCountExact(t *testing.T) {
	client, server := httpPair()
	bare := observed.HTTPExchange{Exchange: httpmatch.Exchange{Role: httpmatch.RoleClient, Outcome: httpmatch.OutcomeClosed, ReqBodySize: -1, RespBodySize: -1, GRPCStatus: -1}}
	odd := grpcExchange()
	odd.Method, odd.GRPCStatus = "BREW", -1
	for _, x := range []observed.HTTPExchange{client, server, grpcExchange(), bare, odd} {
		m := pcommon.NewMap()
		newTranslator().putHTTP(m, &x, httpError(&x))
		assert.Equal(t, httpAttrCount(&x, httpError(&x)), m.Len(), "%+v", m.AsRaw())
	}
}

// TestHTTPDurationMetrics: one histogram per side, bounded attributes
// (never the path, addresses or client ports), and partial reports fold
// into the next full one without emitting anything themselves.
func TestHTTPDurationMetrics(t *testing.T) {
	client, server := httpPair()
	tr := newTranslator()
	partial := tr.Metrics(observed.Report{Time: t1.Add(-time.Second), HTTP: []observed.HTTPExchange{client, server}, Partial: true})
	assert.Zero(t, partial.DataPointCount(), "a partial report emits nothing")
	md := tr.Metrics(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{server}})
	seen := map[string]uint64{}
	forEachMetric(md, func(_ pcommon.Map, m pmetric.Metric) {
		if m.Type() != pmetric.MetricTypeHistogram {
			return
		}
		assert.Equal(t, "s", m.Unit())
		for i := range m.Histogram().DataPoints().Len() {
			dp := m.Histogram().DataPoints().At(i)
			seen[m.Name()] += dp.Count()
			a := dp.Attributes()
			assert.Equal(t, "GET", attr(t, a, semconv.AttrHTTPMethod).Str())
			assert.EqualValues(t, 503, attr(t, a, semconv.AttrHTTPStatus).Int())
			assert.Equal(t, "orders.default.svc", attr(t, a, semconv.AttrServerAddr).Str())
			assert.Equal(t, "503", attr(t, a, semconv.AttrErrorType).Str())
			for _, k := range []string{semconv.AttrURLPath, semconv.AttrClientAddr, semconv.AttrPeerAddr, semconv.AttrNetworkPeerPort, semconv.AttrUserAgent} {
				_, has := a.Get(k)
				assert.False(t, has, k)
			}
		}
	})
	assert.Equal(t, map[string]uint64{semconv.MetricHTTPClientDur: 1, semconv.MetricHTTPServerDur: 2}, seen)
}

// TestFlowProtocolName: a flow of an HTTP connection says so.
func TestFlowProtocolName(t *testing.T) {
	r := firstReport()
	r.Flows[0].Protocol = semconv.ProtocolHTTP
	ld := newTranslator().Logs(r)
	n := 0
	forEachRecord(ld, func(_ pcommon.Resource, lr plog.LogRecord) {
		if v, ok := lr.Attributes().Get(semconv.AttrProtocolName); ok {
			assert.Equal(t, "http", v.Str())
			n++
		}
	})
	assert.Equal(t, 1, n)
}

// TestFNV1a128 checks the hash both ends compute against hash/fnv.
func TestFNV1a128(t *testing.T) {
	for _, in := range []string{"", "a", "ebpfflow", string(make([]byte, 47))} {
		h := fnv.New128a()
		h.Write([]byte(in))
		assert.Equal(t, h.Sum(nil), func() []byte { b := fnv1a128([]byte(in)); return b[:] }(), "%q", in)
	}
}

// TestHTTPTracesGolden pins the HTTP spans (deterministic ids included).
func TestHTTPTracesGolden(t *testing.T) {
	client, server := httpPair()
	got := newTranslator().Traces(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{client, server, grpcExchange()}})
	path := goldenPath("traces_http.yaml")
	if *update {
		require.NoError(t, golden.WriteTracesToFile(path, got))
	}
	want, err := golden.ReadTraces(path)
	require.NoError(t, err)
	require.NoError(t, ptracetest.CompareTraces(want, got))
}

// TestHTTPSpanPeers: spans name the far end through the records'
// enrichment: the client (source.k8s.*) on a SERVER span, the Service and
// the backend that answered (destination.k8s.*, ebpfflow.destination.backend.*)
// on a CLIENT span; nothing for an address the view does not know.
func TestHTTPSpanPeers(t *testing.T) {
	client, server := httpPair()
	client.RemoteAddr, client.Backend = ap("10.96.0.50:80"), ap("10.244.2.9:8080")
	stranger := client
	stranger.LocalAddr, stranger.RemoteAddr, stranger.Backend = ap("10.244.1.5:43999"), ap("203.0.113.9:80"), netip.AddrPort{}
	peers := newFakePeers()
	b := k8sTranslator(peers)
	td := b.Traces(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{client, server, stranger}})
	bySide := map[ptrace.SpanKind][]pcommon.Map{}
	for _, sp := range spansOf(td) {
		bySide[sp.Kind()] = append(bySide[sp.Kind()], sp.Attributes())
	}
	require.Len(t, bySide[ptrace.SpanKindServer], 1)
	require.Len(t, bySide[ptrace.SpanKindClient], 2)
	srv := bySide[ptrace.SpanKindServer][0]
	assert.Equal(t, "checkout-7d9c5b8f4-x2x9k", strAttr(srv, "source.k8s.pod.name"))
	assert.Equal(t, "checkout", strAttr(srv, "source.k8s.workload.name"))
	assert.Equal(t, "", strAttr(srv, "destination.k8s.pod.name"), "the server is the resource")
	var cli, ext pcommon.Map
	for _, m := range bySide[ptrace.SpanKindClient] {
		if strAttr(m, semconv.AttrNetworkPeerPort) == "80" && strAttr(m, semconv.AttrPeerAddr) == "10.96.0.50" {
			cli = m
		} else {
			ext = m
		}
	}
	for k, want := range map[string]string{
		"destination.k8s.service.name":              "payments",
		"destination.k8s.namespace.name":            "shop",
		"destination.k8s.workload.name":             "payments-v1",
		"destination.k8s.node.name":                 "node-2",
		"ebpfflow.destination.backend.address":      "10.244.2.9",
		"ebpfflow.destination.backend.port":         "8080",
		"ebpfflow.destination.backend.k8s.pod.name": "payments-v1-5c6d7e8f9-abcde",
		"source.k8s.pod.name":                       "",
	} {
		assert.Equal(t, want, strAttr(cli, k), k)
	}
	ext.Range(func(k string, _ pcommon.Value) bool {
		assert.NotContains(t, k, "k8s", "an external server has no name")
		return true
	})
	assert.Equal(t, 3, peers.resolved, "one counted lookup per span's far end")

	// The duration histograms name the far end's workload (bounded), not
	// its pod or address, and count no second lookup.
	md := b.Metrics(observed.Report{Time: t1, HTTP: []observed.HTTPExchange{client, server, stranger}})
	assert.Equal(t, 3, peers.resolved, "metrics count no lookup")
	var named int
	forEachMetric(md, func(_ pcommon.Map, m pmetric.Metric) {
		if m.Type() != pmetric.MetricTypeHistogram {
			return
		}
		for i := range m.Histogram().DataPoints().Len() {
			a := m.Histogram().DataPoints().At(i).Attributes()
			for _, k := range []string{"source.k8s.pod.name", "destination.k8s.pod.name", semconv.AttrPeerAddr} {
				_, has := a.Get(k)
				assert.False(t, has, "%s on %s", k, m.Name())
			}
			switch {
			case m.Name() == semconv.MetricHTTPServerDur && strAttr(a, "source.k8s.workload.name") != "":
				assert.Equal(t, "checkout", strAttr(a, "source.k8s.workload.name"))
				named++
			case m.Name() == semconv.MetricHTTPClientDur && strAttr(a, "destination.k8s.workload.name") != "":
				assert.Equal(t, "payments-v1", strAttr(a, "destination.k8s.workload.name"))
				assert.Equal(t, "payments", strAttr(a, "destination.k8s.service.name"))
				assert.Equal(t, "shop", strAttr(a, "destination.k8s.namespace.name"))
				named++
			}
		}
	})
	assert.Equal(t, 2, named, "the server's client and the client's Service backend named; the external server not")

	// The preallocation stays exact with peers.
	for _, x := range []observed.HTTPExchange{client, server, stranger} {
		m := pcommon.NewMap()
		side, p := b.httpPeer(&x, true)
		b.putHTTP(m, &x, httpError(&x))
		putSide(m, side, &p)
		assert.Equal(t, httpAttrCount(&x, httpError(&x))+p.attrCount(side == semconv.SideDestination), m.Len(), "%+v", m.AsRaw())
	}
}
