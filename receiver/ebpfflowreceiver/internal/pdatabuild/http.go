package pdatabuild

import (
	"encoding/binary"
	"hash/fnv"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// httpBounds are those of http.{server,client}.request.duration: semconv's
// advice, below it the sub-millisecond answers of a node's own services.
var httpBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// knownMethods are the methods semconv names; others are "_OTHER" (with
// the method as sent in http.request.method_original on spans).
var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

func httpMethod(m string) string {
	if knownMethods[m] {
		return m
	}
	return semconv.HTTPMethodOther
}

// gRPC status codes a server reports as its own error (semconv): the
// others (NOT_FOUND, INVALID_ARGUMENT, …) are the client's.
var grpcServerErrors = map[int]bool{2: true, 4: true, 12: true, 13: true, 14: true, 15: true}

// httpError returns error.type of an exchange, "" when it succeeded: how
// it failed when it did not complete, else the status code a server (5xx)
// or a client (4xx and 5xx) counts as an error, else the gRPC status.
func httpError(x *observed.HTTPExchange) string {
	if x.Outcome != httpmatch.OutcomeOK {
		return x.Outcome.String()
	}
	server := x.Role == httpmatch.RoleServer
	if x.StatusCode >= 500 || (!server && x.StatusCode >= 400) {
		return strconv.Itoa(x.StatusCode)
	}
	if x.GRPC && x.GRPCStatus > 0 && (!server || grpcServerErrors[x.GRPCStatus]) {
		return strconv.Itoa(x.GRPCStatus)
	}
	return ""
}

// serverPort is server.port: the authority's port, else the port of the
// socket end that is the server.
func serverPort(x *observed.HTTPExchange) int {
	if x.ServerPort != 0 {
		return x.ServerPort
	}
	if x.Role == httpmatch.RoleServer {
		return int(x.LocalAddr.Port())
	}
	return int(x.RemoteAddr.Port())
}

func httpSpanName(x *observed.HTTPExchange) string {
	if x.GRPC && x.RPCService != "" {
		return x.RPCService + "/" + x.RPCMethod
	}
	if m := httpMethod(x.Method); m != semconv.HTTPMethodOther {
		return m
	}
	return "HTTP"
}

// httpAttrCount is the exact number of attributes putHTTP writes.
func httpAttrCount(x *observed.HTTPExchange) int {
	n := 4 // method, scheme, protocol name and version
	if m := httpMethod(x.Method); m != x.Method && x.Method != "" {
		n++
	}
	for _, s := range []string{x.Path, x.ServerAddress, x.UserAgent, httpError(x)} {
		if s != "" {
			n++
		}
	}
	if x.StatusCode > 0 {
		n++
	}
	if serverPort(x) != 0 {
		n++
	}
	if x.RemoteAddr.Addr().IsValid() {
		n += 4 // peer address and port, network.type, network.transport
		if x.Role == httpmatch.RoleServer {
			n++ // client.address
		}
	}
	if x.ReqBodySize >= 0 {
		n++
	}
	if x.RespBodySize >= 0 {
		n++
	}
	if x.GRPC {
		n += 3
		if x.GRPCStatus >= 0 {
			n++
		}
	}
	return n
}

func (t *Builder) putHTTP(m pcommon.Map, x *observed.HTTPExchange) {
	method := httpMethod(x.Method)
	m.PutStr(semconv.AttrHTTPMethod, method)
	if method != x.Method && x.Method != "" {
		m.PutStr(semconv.AttrHTTPMethodOriginal, x.Method)
	}
	if x.Path != "" {
		m.PutStr(semconv.AttrURLPath, x.Path)
	}
	scheme := x.Scheme
	if scheme == "" {
		scheme = "http"
	}
	m.PutStr(semconv.AttrURLScheme, scheme)
	if x.StatusCode > 0 {
		m.PutInt(semconv.AttrHTTPStatus, int64(x.StatusCode))
	}
	if x.ServerAddress != "" {
		m.PutStr(semconv.AttrServerAddr, x.ServerAddress)
	}
	if p := serverPort(x); p != 0 {
		m.PutInt(semconv.AttrServerPort, int64(p))
	}
	if peer := x.RemoteAddr; peer.Addr().IsValid() {
		addr := t.addrString(peer.Addr())
		if x.Role == httpmatch.RoleServer {
			m.PutStr(semconv.AttrClientAddr, addr)
		}
		m.PutStr(semconv.AttrPeerAddr, addr)
		m.PutInt(semconv.AttrNetworkPeerPort, int64(peer.Port()))
		m.PutStr(semconv.AttrNetworkType, networkType(peer.Addr()))
		m.PutStr(semconv.AttrTransport, observed.TransportTCP.String())
	}
	if x.UserAgent != "" {
		m.PutStr(semconv.AttrUserAgent, x.UserAgent)
	}
	m.PutStr(semconv.AttrProtocolName, semconv.ProtocolHTTP)
	m.PutStr(semconv.AttrProtocolVersion, x.Proto.String())
	if x.ReqBodySize >= 0 {
		m.PutInt(semconv.AttrHTTPReqBodySize, x.ReqBodySize)
	}
	if x.RespBodySize >= 0 {
		m.PutInt(semconv.AttrHTTPRespBodySize, x.RespBodySize)
	}
	if x.GRPC {
		m.PutStr(semconv.AttrRPCSystem, semconv.RPCSystemGRPC)
		m.PutStr(semconv.AttrRPCService, x.RPCService)
		m.PutStr(semconv.AttrRPCMethod, x.RPCMethod)
		if x.GRPCStatus >= 0 {
			m.PutInt(semconv.AttrRPCGRPCStatus, int64(x.GRPCStatus))
		}
	}
	if e := httpError(x); e != "" {
		m.PutStr(semconv.AttrErrorType, e)
	}
}

// putHTTPSpan fills a span of one exchange: SERVER or CLIENT, from the
// request's first byte to the response's last, in the trace of its
// traceparent or else in the one both ends derive (see spanIDs).
func (t *Builder) putHTTPSpan(sp ptrace.Span, x *observed.HTTPExchange) {
	sp.SetName(httpSpanName(x))
	if x.Role == httpmatch.RoleServer {
		sp.SetKind(ptrace.SpanKindServer)
	} else {
		sp.SetKind(ptrace.SpanKindClient)
	}
	trace, span, parent, ok := spanIDs(x)
	if !ok {
		trace, span = t.traceID(), t.spanID()
	}
	sp.SetTraceID(trace)
	sp.SetSpanID(span)
	sp.SetParentSpanID(parent)
	if x.HasTraceparent {
		sp.SetFlags(uint32(x.TraceFlags))
	}
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(x.Start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(x.End))
	sp.Attributes().EnsureCapacity(httpAttrCount(x))
	t.putHTTP(sp.Attributes(), x)
	if e := httpError(x); e != "" {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage(e)
	}
}

// spanIDs derives the ids of an exchange's span from what both ends of
// the connection see alike, so that the client's span and the server's of
// one request meet in one trace without either process propagating
// anything, on one node or two:
//
//   - the client's address and port (after unmapping IPv4-mapped IPv6),
//     and the TCP sequence number of the request's first byte (both ends
//     count the same bytes). The server's address is left out: a client
//     that reaches it through a Service addresses the Service's IP, which
//     the server never sees.
//   - With a traceparent, the trace is its trace and both spans are
//     children of its parent span.
//   - Without one, the trace id is derived from the key above, the client
//     span is the trace's root and the server span its child.
//
// ok is false when the exchange carries no sequence number: its ids are
// then random.
func spanIDs(x *observed.HTTPExchange) (trace pcommon.TraceID, span, parent pcommon.SpanID, ok bool) {
	client := x.LocalAddr
	if x.Role == httpmatch.RoleServer {
		client = x.RemoteAddr
	}
	if !x.HasSeq || !client.IsValid() {
		return trace, span, parent, false
	}
	var key [16 + 2 + 4 + 16 + 8]byte
	a := client.Addr().Unmap().As16()
	copy(key[:16], a[:])
	binary.BigEndian.PutUint16(key[16:], client.Port())
	binary.BigEndian.PutUint32(key[18:], x.Seq)
	if x.HasTraceparent {
		copy(key[22:38], x.TraceID[:])
		copy(key[38:], x.ParentSpanID[:])
	}
	c, sv := hash128("ebpfflow.span.client", key[:]), hash128("ebpfflow.span.server", key[:])
	clientSpan, serverSpan := pcommon.SpanID(c[:8]), pcommon.SpanID(sv[:8])
	if clientSpan.IsEmpty() || serverSpan.IsEmpty() {
		return trace, span, parent, false // never all zero: random ones then
	}
	if x.HasTraceparent {
		trace, parent = x.TraceID, x.ParentSpanID
	} else {
		trace = pcommon.TraceID(hash128("ebpfflow.trace", key[:]))
	}
	if x.Role == httpmatch.RoleServer {
		span = serverSpan
		if !x.HasTraceparent {
			parent = clientSpan
		}
	} else {
		span = clientSpan
	}
	return trace, span, parent, true
}

// hash128 is FNV-1a over a domain and a key: the same on every node.
func hash128(domain string, key []byte) [16]byte {
	h := fnv.New128a()
	h.Write([]byte(domain))
	h.Write(key)
	var out [16]byte
	h.Sum(out[:0])
	if out == [16]byte{} {
		out[15] = 1 // ids are never all zero
	}
	return out
}

// addHTTP feeds http.server.request.duration or .client.: bounded
// attributes only (method, status, server address and port, error.type;
// never paths, client addresses or ports).
func (t *Builder) addHTTP(x *observed.HTTPExchange) {
	id := metricHTTPClientDuration
	if x.Role == httpmatch.RoleServer {
		id = metricHTTPServerDuration
	}
	e := edge{
		method:     httpMethod(x.Method),
		status:     x.StatusCode,
		server:     x.ServerAddress,
		serverPort: uint16(serverPort(x)),
		errorType:  httpError(x),
	}
	t.observe(metricResource(x.Local), id, e, x.End.Sub(x.Start).Seconds())
}
