// Package httpmatch turns the bytes that processes write to and read from
// TCP sockets into HTTP exchanges: HTTP/1.0 and 1.1, HTTP/2 (h2c, by prior
// knowledge or upgrade) and gRPC. It is the protocol engine behind the
// receiver's HTTP spans and metrics: pure Go, bounded, every loss counted.
// It knows nothing of BPF or of the collector; a capture of plaintext
// socket calls of any origin (syscall tracepoints today, uprobes on TLS
// libraries later) feeds it.
//
// # Input
//
// The capture reports each socket I/O call of a local process on a TCP
// connection as a Chunk, in the order the calls completed:
//
//   - Conn: the socket cookie, the connection's key. Dir: Sent (write,
//     writev, send*, sendfile, splice out) or Received (read, readv,
//     recv*). PID: the process (tgid) that made the call, or 0. Time: when
//     the call completed, on the clock Expire is given.
//   - Seq: the TCP sequence number of the call's first byte, read from
//     tcp_sock before the call moves data: write_seq for a send,
//     copied_seq for a receive; HasSeq says it was read. With it the engine
//     counts bytes never reported (a full ring buffer: a gap) exactly,
//     passes over them when they lie inside a body, drops bytes reported
//     twice (a MSG_PEEK read and the read after it) and puts back in order
//     calls of one direction reported out of order. Both ends of a
//     connection see the same sequence numbers: Exchange.Seq joins a
//     client's span to the server's.
//   - OtherSeq: the other direction's position when the call began, read
//     at the same time: write_seq for a receive (every byte the process
//     had sent before it), copied_seq for a send. HasOtherSeq says it was
//     read. Optional but recommended: with it, a response whose read is
//     reported before the write of its request (two threads on two CPUs)
//     waits for it, and after a gap the engine knows exactly which
//     requests the lost bytes could have answered; without it the arrival
//     order is trusted and a gap in the responses reports every exchange
//     then in flight as lost.
//   - Size: the bytes the call moved (its return value); Data: its first
//     bytes, at most Size, as many as the capture copies (4–16 KiB is
//     plenty; sendfile may copy none). Bytes past Data are followed by
//     count: bodies, HTTP/2 DATA payloads and chunk data are passed over
//     whatever their size, but what framing needs (an HTTP/1 head, a
//     chunk-size line, an HTTP/2 frame header or header block) must be in
//     Data. A Received chunk of Size 0 reports an end of stream (a read
//     returned 0). Failed calls (errors, EAGAIN) are not chunks. Add does
//     not keep Data.
//
// Close reports that the local socket was closed, ProcessExit that a
// process exited (the connections whose last call it made are closed with
// it: the kernel closes them, no close call is seen),
// and Expire, called periodically (every 100 ms to 1 s) with the current
// time, reports exchanges that timed out and releases state. A capture may
// begin in the middle of a connection: the engine finds the next message
// boundary at the start of a call, or gives the connection up, counted.
//
// Add returns false once a connection is of no further use (not HTTP,
// TLS, a WebSocket or CONNECT tunnel, an HTTP/2 connection that can no
// longer be decoded): the capture may stop copying its bytes until it
// closes. The role (client or server) and the protocol of each
// connection are inferred from the traffic.
//
// # Output
//
// The emit function given to New receives every exchange exactly once:
// when its final response has been seen to its last byte (OutcomeOK), or
// when it can no longer complete — the connection closed (OutcomeClosed),
// an HTTP/2 stream was reset or refused (OutcomeReset), nothing moved for
// Config.RequestTimeout (OutcomeTimeout), or the capture lost what it
// needed (OutcomeLost, with the Cause). Interim 1xx responses are not
// final. Start is the completion time of the call that carried the
// request's first byte, End that of the call carrying the response's
// last byte. The Exchange passed to emit is reused after the call; its
// strings are not.
//
// Values of Authorization, Proxy-Authorization, Cookie and Set-Cookie
// headers and URL query strings are never copied out of the captured
// bytes; the only place they may live on is an HPACK dynamic table, where
// HTTP/2 requires the decoder to keep what the encoder indexed.
//
// # Losses
//
// Stats.Lost counts, by Cause (the label of ebpfflow_events_lost{probe=
// "http",cause}), every place where bytes could not be followed or
// parsed, every exchange dropped at a bound or timed out, every response
// without a request, and every HTTP/2 connection that could not be
// decoded. Exchanges a loss cut short are emitted with OutcomeLost. An
// HTTP/2 connection whose header block bytes are lost (a gap or bytes past
// the capture that held a HEADERS, PUSH_PROMISE or CONTINUATION frame, or
// a frame header) is given up (CauseHPACKDesync, CauseGap,
// CauseUncaptured): decoding later blocks against a table that missed
// entries could give wrong headers. HTTP/2 connections first seen after
// their preface are not decoded (CauseMidstream).
//
// State is bounded by Config: connections (least recently active
// evicted), exchanges in flight per connection and overall (oldest
// evicted), head and header sizes, HPACK table sizes, chunks held back.
// A Matcher is not safe for concurrent use.
package httpmatch
