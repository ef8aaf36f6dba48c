package pdatabuild

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
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

// httpMethod returns the method if semconv names it, else "_OTHER" (with
// the method as sent in http.request.method_original on spans). A switch,
// not a map: it runs several times per span and hashes nothing.
func httpMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return m
	}
	return semconv.HTTPMethodOther
}

// gRPC status codes a server reports as its own error (semconv): the
// others (NOT_FOUND, INVALID_ARGUMENT, …) are the client's.
func grpcServerError(code int) bool {
	switch code {
	case 2, 4, 12, 13, 14, 15:
		return true
	}
	return false
}

// httpError returns error.type of an exchange, "" when it succeeded: how
// it failed when it did not complete, else the status code a server (5xx)
// or a client (4xx and 5xx) counts as an error, else the gRPC status.
func httpError(x *observed.HTTPExchange) string {
	if x.Outcome != httpmatch.OutcomeOK {
		return x.Outcome.String()
	}
	server := x.Role == httpmatch.RoleServer
	if x.StatusCode >= 500 || (!server && x.StatusCode >= 400) {
		return codeString(x.StatusCode)
	}
	if x.GRPC && x.GRPCStatus > 0 && (!server || grpcServerError(x.GRPCStatus)) {
		return codeString(x.GRPCStatus)
	}
	return ""
}

// codeStrings are the status codes as error.type values, formatted once.
var codeStrings = func() (s [600]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func codeString(c int) string {
	if c >= 0 && c < len(codeStrings) {
		return codeStrings[c]
	}
	return strconv.Itoa(c)
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

// httpAttrCount is the exact number of attributes putHTTP writes; errType
// is httpError(x).
func httpAttrCount(x *observed.HTTPExchange, errType string) int {
	n := 3 // method, scheme, protocol version
	if m := httpMethod(x.Method); m != x.Method && x.Method != "" {
		n++
	}
	for _, s := range []string{x.Path, x.ServerAddress, x.UserAgent, errType} {
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
		n += 2 // peer address and port
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

// putHTTP writes the span attributes; errType is httpError(x).
func (t *Builder) putHTTP(m pcommon.Map, x *observed.HTTPExchange, errType string) {
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
	}
	if x.UserAgent != "" {
		m.PutStr(semconv.AttrUserAgent, x.UserAgent)
	}
	// network.protocol.name (http), network.transport (tcp) and
	// network.type go without saying: semconv leaves them out for HTTP.
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
	if errType != "" {
		m.PutStr(semconv.AttrErrorType, errType)
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
	errType := httpError(x)
	side, p := t.httpPeer(x, true)
	sp.Attributes().EnsureCapacity(httpAttrCount(x, errType) + p.attrCount(side == semconv.SideDestination))
	t.putHTTP(sp.Attributes(), x, errType)
	putSide(sp.Attributes(), side, &p)
	if errType != "" {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage(errType)
	}
}

// httpPeer resolves the far end of an exchange as flows do: the client
// (source) on a SERVER span, the server (destination, and the backend
// behind a Service address) on a CLIENT span; count as resolvePeer.
func (t *Builder) httpPeer(x *observed.HTTPExchange, count bool) (string, peer) {
	if x.Role == httpmatch.RoleServer {
		return semconv.SideSource, t.resolvePeer(observed.TransportTCP, x.RemoteAddr, netip.AddrPort{}, x.Start, count)
	}
	return semconv.SideDestination, t.resolvePeer(observed.TransportTCP, x.RemoteAddr, x.Backend, x.Start, count)
}

// spanIDs derives the ids of an exchange's span from what both ends of
// the connection see alike, so that the client's span and the server's of
// one request meet in one trace without either process propagating
// anything, on one node or two (docs/telemetry.md spells it out):
//
//   - the key: the client's address (16 bytes, IPv4-mapped IPv6 unmapped,
//     then IPv4 as ::ffff:a.b.c.d) and port (2 bytes, big endian) and the
//     TCP sequence number of the request's first byte (4 bytes, big
//     endian): both ends count the same bytes. The server's address is
//     left out: a client that reaches it through a Service addresses the
//     Service's IP, which the server never sees.
//   - Without a traceparent, h = FNV-1a-128(1 ‖ key): h is the trace id,
//     its first 8 bytes the client span's id (the trace's root), its last
//     8 the server span's (the client span's child).
//   - With one, the trace is its trace and both spans are children of its
//     parent span; h = FNV-1a-128(2 ‖ key ‖ trace id ‖ parent id) gives
//     their ids the same way.
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
	var key [1 + 16 + 2 + 4 + 16 + 8]byte
	n := 1 + 16 + 2 + 4
	key[0] = 1
	a := client.Addr().Unmap().As16()
	copy(key[1:17], a[:])
	binary.BigEndian.PutUint16(key[17:], client.Port())
	binary.BigEndian.PutUint32(key[19:], x.Seq)
	if x.HasTraceparent {
		key[0] = 2
		copy(key[23:39], x.TraceID[:])
		copy(key[39:], x.ParentSpanID[:])
		n = len(key)
	}
	h := fnv1a128(key[:n])
	clientSpan, serverSpan := pcommon.SpanID(h[:8]), pcommon.SpanID(h[8:])
	if clientSpan.IsEmpty() || serverSpan.IsEmpty() {
		return trace, span, parent, false // never all zero: random ones then
	}
	if x.HasTraceparent {
		trace, parent = x.TraceID, x.ParentSpanID
	} else {
		trace = pcommon.TraceID(h)
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

// fnv1a128 is FNV-1a with 128-bit state (hash/fnv's New128a, without its
// allocation): the same on every node.
func fnv1a128(b []byte) [16]byte {
	// offset basis 0x6c62272e07bb014262b821756295c58d, prime 2^88 + 0x13b
	hi, lo := uint64(0x6c62272e07bb0142), uint64(0x62b821756295c58d)
	for _, c := range b {
		lo ^= uint64(c)
		// (hi:lo) * (2^88 + 0x13b) mod 2^128
		h, l := bits.Mul64(lo, 0x13b)
		h += lo<<24 + hi*0x13b
		hi, lo = h, l
	}
	var out [16]byte
	binary.BigEndian.PutUint64(out[:8], hi)
	binary.BigEndian.PutUint64(out[8:], lo)
	return out
}

// addHTTP feeds http.server.request.duration or .client.: bounded
// attributes only (method, status, server address and port, error.type,
// and the far end's workload when the cluster view names it, as flow
// metrics carry it; never paths, client addresses or ports).
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
	if t.cfg.Peers != nil {
		var p peer
		e.peerSide, p = t.httpPeer(x, false) // the span counted the lookup
		e.peerNS, e.peerWorkload, e.peerKind, e.peerService = p.workload()
	}
	t.observe(metricResource(x.Local), id, e, x.End.Sub(x.Start).Seconds())
}
