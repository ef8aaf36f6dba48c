package httpmatch

import "time"

// Dir is the direction of a Chunk as seen by the local process.
type Dir uint8

const (
	Sent     Dir = 1 // written by the local process (write, sendmsg, sendfile, …)
	Received Dir = 2 // read by the local process (read, recvmsg, …)
)

func (d Dir) other() Dir { return 3 - d }

// Chunk is one socket I/O call of the local process on one TCP connection.
// Add does not keep Data.
type Chunk struct {
	Conn uint64    // socket cookie: the connection's key
	PID  uint32    // process (tgid) that made the call; 0 if unknown (see ProcessExit)
	Dir  Dir       // Sent or Received
	Time time.Time // when the call completed

	// Seq is the TCP sequence number of the call's first byte: tcp_sock
	// write_seq before a send, copied_seq before a receive. HasSeq says it
	// was read.
	Seq    uint32
	HasSeq bool

	// OtherSeq is the other direction's position when the call began: for
	// a receive, the socket's write_seq (every byte the local process had
	// sent before it); for a send, its copied_seq (every byte it had read).
	// HasOtherSeq says it was read. Optional: with it, chunks of the two
	// directions delivered out of order (one thread's send reported after
	// another thread read the response) are put back in causal order.
	OtherSeq    uint32
	HasOtherSeq bool

	// Size is the number of bytes the call moved; Data its first bytes
	// (len(Data) ≤ Size, may be empty, e.g. sendfile). A Received chunk of
	// Size 0 is an end of stream: the read returned 0 because the peer
	// closed its side.
	Size uint32
	Data []byte
}

// Role says which end of the exchange the local process is.
type Role uint8

const (
	RoleClient Role = 1 // the local process sent the request
	RoleServer Role = 2 // the local process received the request
)

func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleServer:
		return "server"
	}
	return "unknown"
}

// Proto is the HTTP version of an exchange.
type Proto uint8

const (
	Proto10 Proto = 1 // HTTP/1.0
	Proto11 Proto = 2 // HTTP/1.1
	Proto2  Proto = 3 // HTTP/2 (prior knowledge or h2c upgrade)
)

// String is network.protocol.version: "1.0", "1.1" or "2".
func (p Proto) String() string {
	switch p {
	case Proto10:
		return "1.0"
	case Proto11:
		return "1.1"
	case Proto2:
		return "2"
	}
	return ""
}

// Outcome is how an exchange ended.
type Outcome uint8

const (
	// OutcomeOK: the final response was seen to its last byte.
	OutcomeOK Outcome = iota
	// OutcomeClosed: the connection was closed (by either end, or with
	// its process) before the response was complete; StatusCode is set if
	// the response head had come.
	OutcomeClosed
	// OutcomeReset: HTTP/2 only: the stream was reset (RST_STREAM) or
	// refused by GOAWAY before its response was complete; H2ErrorCode says
	// why.
	OutcomeReset
	// OutcomeTimeout: nothing of the exchange moved for RequestTimeout.
	OutcomeTimeout
	// OutcomeLost: the capture lost bytes the exchange needed, or they did
	// not parse; Cause says which. What was seen is reported.
	OutcomeLost
	numOutcomes
)

// NumOutcomes is the number of Outcome values, for iterating Stats.Outcomes.
const NumOutcomes = int(numOutcomes)

func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeClosed:
		return "closed"
	case OutcomeReset:
		return "reset"
	case OutcomeTimeout:
		return "timeout"
	case OutcomeLost:
		return "lost"
	}
	return "unknown"
}

// Cause is why something was lost: the label of
// ebpfflow_events_lost{probe="http",cause}.
type Cause uint8

const (
	CauseNone Cause = iota
	// CauseGap: bytes between two calls were never seen (ring buffer
	// full, a connection older than the capture) where framing needed
	// them.
	CauseGap
	// CauseUncaptured: bytes past a call's captured prefix were needed:
	// a message head, a chunk-size line, an HTTP/2 frame header.
	CauseUncaptured
	// CauseUnparseable: bytes where a message or frame had to be are not
	// valid HTTP.
	CauseUnparseable
	// CauseTooLarge: an HTTP/1 head longer than Config.MaxHead.
	CauseTooLarge
	// CauseHPACKDesync: an HTTP/2 header block was lost or did not decode:
	// the connection is no longer decoded (later headers could be wrong).
	CauseHPACKDesync
	// CauseEvicted: state dropped at a bound (MaxConns, MaxInFlight,
	// MaxPending).
	CauseEvicted
	// CauseTimeout: an exchange reported with OutcomeTimeout.
	CauseTimeout
	// CauseUnmatched: a response no request was seen for (the request
	// was lost, or sent before the capture began).
	CauseUnmatched
	// CauseMidstream: an HTTP/2 connection first seen after its start:
	// without its first header blocks it cannot be decoded.
	CauseMidstream
	numCauses
)

// NumCauses is the number of Cause values, for iterating Stats.Lost.
const NumCauses = int(numCauses)

func (c Cause) String() string {
	switch c {
	case CauseNone:
		return "none"
	case CauseGap:
		return "gap"
	case CauseUncaptured:
		return "uncaptured"
	case CauseUnparseable:
		return "unparseable"
	case CauseTooLarge:
		return "too_large"
	case CauseHPACKDesync:
		return "hpack_desync"
	case CauseEvicted:
		return "evicted"
	case CauseTimeout:
		return "timeout"
	case CauseUnmatched:
		return "unmatched"
	case CauseMidstream:
		return "midstream"
	}
	return "unknown"
}

// Exchange is one request and its response (or what became of it). The
// emit callback receives a pointer valid only during the call; its strings
// stay valid, so copying the value is enough to keep it.
type Exchange struct {
	Conn    uint64  // socket cookie of the local socket
	PID     uint32  // process of the call that began the exchange (Chunk.PID)
	Role    Role    // from the traffic: who sent the request
	Proto   Proto   // HTTP version of the request
	Outcome Outcome // how it ended
	Cause   Cause   // why, when Outcome is OutcomeLost; CauseNone otherwise

	Start time.Time // completion time of the call carrying the request's first byte
	End   time.Time // completion time of the call carrying the response's last byte, or when the exchange failed

	// Seq is the TCP sequence number of the request's first byte (of its
	// HEADERS frame in HTTP/2), in the client's sequence space: the
	// client's and the server's captures of one request compute the same
	// value. HasSeq is false when the chunks carried no Seq.
	Seq    uint32
	HasSeq bool

	StreamID uint32 // HTTP/2 stream; 0 for HTTP/1

	Method        string // as sent ("GET"); "" if the request head was not seen whole
	Path          string // the request target's path, never its query string
	Scheme        string // "http", or the request's :scheme / absolute-form scheme
	ServerAddress string // host of Host / :authority (or an absolute-form target), without the port
	ServerPort    int    // port of that authority; 0 when it has none
	UserAgent     string

	StatusCode int // final status code; 0 if none came (1xx interim responses are skipped)

	ReqBodySize  int64 // request body bytes (without chunked framing or HTTP/2 padding); -1 unknown
	RespBodySize int64 // response body bytes; -1 unknown

	// W3C trace context of the request, when it carried a valid traceparent.
	HasTraceparent bool
	TraceID        [16]byte
	ParentSpanID   [8]byte
	TraceFlags     byte

	// gRPC (HTTP/2 with content-type application/grpc*).
	GRPC       bool
	RPCService string // "package.Service" from :path
	RPCMethod  string // "Method" from :path
	GRPCStatus int    // grpc-status of the trailers (or trailers-only response); -1 if none came

	H2ErrorCode uint32 // RST_STREAM or GOAWAY error code, with OutcomeReset
}

// Stats are cumulative counters.
type Stats struct {
	Chunks    uint64 // chunks taken by Add
	Conns     uint64 // connections tracked so far
	Requests  uint64 // requests whose head was seen; each is emitted exactly once
	Exchanges uint64 // exchanges emitted
	Outcomes  [NumOutcomes]uint64
	// Lost counts, by cause, each loss: a place in a byte stream where
	// framing was lost or bytes did not parse, an exchange dropped at a
	// bound or timed out, a response without a request, a connection that
	// could not be decoded. Exchanges a loss cut short are emitted with
	// OutcomeLost and that cause, and are not counted again.
	Lost          [NumCauses]uint64
	GapBytes      uint64 // bytes never seen between calls (Seq jumps)
	Held          uint64 // chunks held back to wait for bytes that precede them
	NotHTTP       uint64 // connections given up as not HTTP (TLS, other protocols)
	Upgraded      uint64 // connections switched to a protocol other than HTTP/2 (WebSocket, CONNECT tunnels)
	LateResponses uint64 // responses to exchanges already reported (timeout, eviction), skipped
	Invalid       uint64 // chunks with an invalid Dir or Size < len(Data)
}
