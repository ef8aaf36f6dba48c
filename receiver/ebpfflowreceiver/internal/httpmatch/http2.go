package httpmatch

import (
	"encoding/binary"
	"errors"
	"time"

	"golang.org/x/net/http2/hpack"
)

// HTTP/2 (RFC 9113) framing: each direction is a sequence of frames, read
// by their 9-byte headers; header blocks (HEADERS, PUSH_PROMISE and their
// CONTINUATION frames) are fed as they come to that direction's HPACK
// decoder (RFC 7541, golang.org/x/net/http2/hpack), whose dynamic table
// follows the sender's encoder. DATA payloads are passed over by size,
// seen or not. Bytes lost anywhere else may have held a header block:
// from then on the decoder's table could differ from the encoder's and
// decoded fields could be wrong, so the connection is given up.
//
// The dynamic table's size changes arrive in the header blocks themselves
// (dynamic table size updates); SETTINGS_HEADER_TABLE_SIZE only bounds
// them, and a passive decoder need not enforce that bound, so SETTINGS are
// not read: the decoders accept any size up to Config.MaxHeaderTable.

const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// h2conn holds a connection's streams in flight.
type h2conn struct {
	streams []*pending // by stream creation
	maxID   uint32     // highest client stream id seen
}

func (s *h2conn) find(id uint32) *pending {
	for i := len(s.streams) - 1; i >= 0; i-- {
		if s.streams[i].ex.StreamID == id {
			return s.streams[i]
		}
	}
	return nil
}

func (s *h2conn) remove(p *pending) {
	for i, q := range s.streams {
		if q == p {
			copy(s.streams[i:], s.streams[i+1:])
			s.streams[len(s.streams)-1] = nil
			s.streams = s.streams[:len(s.streams)-1]
			return
		}
	}
}

// target is what a header block's fields fill.
type target uint8

const (
	tgtNone        target = iota // decoded to keep the table in step, not kept
	tgtRequest                   // request headers
	tgtReqTrailers               // request trailers
	tgtResponse                  // response headers (interim or final)
	tgtTrailers                  // response trailers
)

// h2dir parses one direction of an HTTP/2 connection.
type h2dir struct {
	c       *conn
	dec     *hpack.Decoder
	req     bool // the client's direction
	preface int  // bytes of the client preface still to come

	hdr     [9]byte
	nhdr    int
	inFrame bool
	typ     uint8
	flags   uint8
	sid     uint32
	fixed   [8]byte // fixed fields before a payload (pad length, priority, error codes)
	nfixed  int
	need    int   // fixed bytes of this frame
	lostFix bool  // some fixed bytes were not seen
	rest    int64 // payload bytes to go after the fixed fields
	pad     int64 // of them, padding at the end

	frameT      time.Time // the current frame's first byte
	frameSeq    uint32
	frameHasSeq bool

	// The header block being decoded.
	block       bool
	blockSid    uint32
	blockEnd    bool // END_STREAM on its HEADERS frame
	blockT      time.Time
	blockSeq    uint32
	blockHasSeq bool
	tgt         target
	tp          *pending
	tgen        uint32
	authority   bool // :authority seen in the block
}

func (c *conn) newH2dir(m *Matcher, d *direction, req bool, preface int) {
	h := &h2dir{c: c, req: req, preface: preface}
	h.dec = hpack.NewDecoder(4096, h.field)
	h.dec.SetAllowedMaxDynamicTableSize(uint32(m.cfg.MaxHeaderTable))
	h.dec.SetMaxStringLength(m.cfg.MaxHead)
	m.putBuf(&d.p)
	d.h2 = h
}

// preface: an HTTP/1 head "PRI * HTTP/2.0" was parsed on d: the client
// preface, either of prior knowledge or after an h2c upgrade.
func (c *conn) preface(m *Matcher, d *direction, cl *call) {
	switch {
	case c.state == stProbe:
		c.takeRole(cl.dir, true)
		c.state = stHTTP2
		c.h2 = &h2conn{}
		if o := c.dir(cl.dir.other()); o.h2 == nil {
			c.newH2dir(m, o, false, 0)
		}
	case c.state == stHTTP2 && c.reqDir() == cl.dir:
	default:
		c.lose1(m, d, cl.dir, CauseUnparseable, cl.t)
		return
	}
	c.newH2dir(m, d, true, len(clientPreface)-len("PRI * HTTP/2.0\r\n\r\n"))
}

// startH2: dir sent a server preface (a SETTINGS frame) as the first bytes
// seen on a connection.
func (c *conn) startH2(m *Matcher, dir Dir) {
	c.takeRole(dir, false)
	c.state = stHTTP2
	c.h2 = &h2conn{}
	c.newH2dir(m, c.dir(dir), false, 0)
	c.newH2dir(m, c.dir(dir.other()), true, len(clientPreface))
}

// upgradeH2: a 101 answered an "Upgrade: h2c" request: the response
// direction speaks HTTP/2 from the next byte, the request direction after
// the request (with the client preface); the request is stream 1.
func (c *conn) upgradeH2(m *Matcher, d *direction, t time.Time) {
	s := c.q.pop()
	for c.q.n > 0 { // nothing may follow an upgrade request
		if o := c.q.pop(); o.p != nil {
			m.stats.Lost[CauseUnparseable]++
			m.done(o.p, OutcomeLost, CauseUnparseable, t)
		}
	}
	c.state = stHTTP2
	c.h2 = &h2conn{maxID: 1}
	if p := s.p; p != nil {
		p.ex.Proto, p.ex.StreamID, p.ex.StatusCode = Proto2, 1, 0
		p.reqEnd = true
		c.h2.streams = append(c.h2.streams, p)
		m.touch(p, t)
	}
	d.p.st, d.p.num = h1Start, 0
	c.newH2dir(m, d, false, 0)
}

// isServerPreface: b starts with a SETTINGS frame (not an ACK) on stream 0.
func isServerPreface(b []byte) bool {
	if len(b) < 9 || b[3] != frameSettings || b[4] != 0 || binary.BigEndian.Uint32(b[5:]) != 0 {
		return false
	}
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	return n%6 == 0 && n <= 6*16
}

// looksLikeFrames: b, the captured start of a call of size bytes, is a
// sequence of frame headers and payloads ending exactly with the call.
func looksLikeFrames(b []byte, size int64) bool {
	var off int64
	for off+9 <= int64(len(b)) {
		h := b[off:]
		n := int64(h[0])<<16 | int64(h[1])<<8 | int64(h[2])
		if h[3] > frameContinuation || h[5]&0x80 != 0 {
			return false
		}
		off += 9 + n
		if off == size {
			return true
		}
		if off > size {
			return false
		}
	}
	return false
}

// feed parses n bytes of the direction, of which data were captured.
func (h *h2dir) feed(m *Matcher, cl *call, data []byte, n int64) int64 {
	c := h.c
	var pos int64
	for pos < n {
		if c.state == stIgnored {
			return n
		}
		captured := int64(len(data)) - pos
		switch {
		case h.preface > 0:
			k := min(int64(h.preface), n-pos)
			want := clientPreface[len(clientPreface)-h.preface:]
			if g := min(max(captured, 0), k); g > 0 && string(data[pos:pos+g]) != want[:g] {
				h.lose(m, CauseUnparseable, cl.t)
				return n
			}
			h.preface -= int(k)
			pos += k
		case !h.inFrame:
			if captured <= 0 {
				h.lose(m, cl.cause, cl.t)
				return n
			}
			if h.nhdr == 0 {
				h.frameT, h.frameSeq, h.frameHasSeq = cl.t, cl.seq+uint32(pos), cl.hasSeq
			}
			k := min(int64(9-h.nhdr), captured)
			h.nhdr += copy(h.hdr[h.nhdr:], data[pos:pos+k])
			pos += k
			if h.nhdr == 9 {
				h.nhdr = 0
				if !h.frameHeader(m, cl.t) {
					return n
				}
			}
		case h.nfixed < h.need:
			k := min(int64(h.need-h.nfixed), n-pos)
			if captured > 0 {
				copy(h.fixed[h.nfixed:], data[pos:pos+min(k, captured)])
			}
			if captured < k {
				h.lostFix = true
			}
			h.nfixed += int(k)
			pos += k
			if h.nfixed == h.need && !h.payloadStart(m, cl.t) {
				return n
			}
		default:
			k := min(h.rest, n-pos)
			switch h.typ {
			case frameHeaders, framePushPromise, frameContinuation:
				if frag := h.rest - h.pad; frag > 0 {
					k = min(k, frag)
					got := min(max(captured, 0), k)
					if got > 0 {
						if _, err := h.dec.Write(data[pos : pos+got]); err != nil {
							h.lose(m, decodeCause(err), cl.t)
							return n
						}
					}
					if got < k {
						h.lose(m, CauseHPACKDesync, cl.t)
						return n
					}
				}
			case frameData:
				if p := h.stream(); p != nil {
					body := min(k, max(h.rest-h.pad, 0))
					if h.req {
						p.reqBody += body
					} else {
						p.respBody += body
					}
					m.touch(p, cl.t)
				}
			}
			pos += k
			h.rest -= k
			if h.rest == 0 && !h.frameEnd(m, cl.t) {
				return n
			}
		}
	}
	return pos
}

func decodeCause(err error) Cause {
	if errors.Is(err, hpack.ErrStringLength) {
		return CauseTooLarge
	}
	return CauseHPACKDesync
}

// frameHeader takes the 9-byte header in h.hdr; false when the connection
// was given up.
func (h *h2dir) frameHeader(m *Matcher, t time.Time) bool {
	length := int64(h.hdr[0])<<16 | int64(h.hdr[1])<<8 | int64(h.hdr[2])
	h.typ, h.flags = h.hdr[3], h.hdr[4]
	h.sid = binary.BigEndian.Uint32(h.hdr[5:]) & 0x7fffffff
	h.inFrame, h.nfixed, h.lostFix, h.pad = true, 0, false, 0
	if h.block != (h.typ == frameContinuation) || h.block && h.sid != h.blockSid {
		h.lose(m, CauseUnparseable, t) // a header block must go on in CONTINUATION frames alone
		return false
	}
	need := 0
	stream := 1 // 1: on a stream, -1: on stream 0, 0: either
	switch h.typ {
	case frameData:
		if h.flags&flagPadded != 0 {
			need = 1
		}
	case frameHeaders:
		if h.flags&flagPadded != 0 {
			need = 1
		}
		if h.flags&flagPriority != 0 {
			need += 5
		}
	case frameRSTStream:
		need = 4
	case framePushPromise:
		need = 4
		if h.flags&flagPadded != 0 {
			need++
		}
	case frameGoAway:
		need, stream = 8, -1
	case frameSettings, framePing:
		stream = -1
	case framePriority, frameContinuation:
	default:
		stream = 0 // WINDOW_UPDATE; extension frames are passed over
	}
	if int64(need) > length || stream == 1 && h.sid == 0 || stream == -1 && h.sid != 0 {
		h.lose(m, CauseUnparseable, t)
		return false
	}
	h.need, h.rest = need, length-int64(need)
	if need == 0 {
		return h.payloadStart(m, t)
	}
	return true
}

// payloadStart runs once a frame's fixed fields are in.
func (h *h2dir) payloadStart(m *Matcher, t time.Time) bool {
	switch h.typ {
	case frameData, frameHeaders, framePushPromise:
		if h.flags&flagPadded != 0 {
			if h.lostFix {
				if h.typ != frameData {
					h.lose(m, CauseHPACKDesync, t) // the block's end is not known
					return false
				}
				// The body size counts the padding, unknown.
			} else if h.pad = int64(h.fixed[0]); h.pad > h.rest {
				h.lose(m, CauseUnparseable, t)
				return false
			}
		}
		if h.typ != frameData {
			h.startBlock(m, t)
		}
	case frameRSTStream:
		if p := h.c.h2.find(h.sid); p != nil {
			if !h.lostFix {
				p.ex.H2ErrorCode = binary.BigEndian.Uint32(h.fixed[:4])
			}
			h.c.h2.remove(p)
			m.done(p, OutcomeReset, CauseNone, t)
		}
	case frameGoAway:
		if !h.req && !h.lostFix {
			h.goAway(m, binary.BigEndian.Uint32(h.fixed[:4])&0x7fffffff, binary.BigEndian.Uint32(h.fixed[4:8]), t)
		}
	}
	if h.rest == 0 {
		return h.frameEnd(m, t)
	}
	return true
}

// goAway: the server will not process client streams above last.
func (h *h2dir) goAway(m *Matcher, last, code uint32, t time.Time) {
	s := h.c.h2
	for i := 0; i < len(s.streams); {
		p := s.streams[i]
		if p.ex.StreamID <= last {
			i++
			continue
		}
		p.ex.H2ErrorCode = code
		s.remove(p)
		m.done(p, OutcomeReset, CauseNone, t)
	}
}

// stream returns the stream of the current frame, if in flight.
func (h *h2dir) stream() *pending {
	if h.sid%2 == 0 {
		return nil
	}
	return h.c.h2.find(h.sid)
}

// startBlock opens a header block and picks what its fields fill.
func (h *h2dir) startBlock(m *Matcher, t time.Time) {
	h.block, h.blockSid, h.blockEnd = true, h.sid, h.flags&flagEndStream != 0 && h.typ == frameHeaders
	h.blockT, h.blockSeq, h.blockHasSeq = h.frameT, h.frameSeq, h.frameHasSeq
	h.tgt, h.tp, h.authority = tgtNone, nil, false
	if h.typ != frameHeaders || h.sid%2 == 0 {
		return // pushes are decoded to keep the table in step, not reported
	}
	s := h.c.h2
	p := s.find(h.sid)
	if p == nil {
		if h.sid <= s.maxID {
			return // a stream already reported
		}
		if len(s.streams) >= m.cfg.MaxInFlight {
			m.stats.Lost[CauseEvicted]++
			old := s.streams[0]
			s.remove(old)
			m.done(old, OutcomeLost, CauseEvicted, t)
		}
		p = m.newPending(h.c, h.frameT)
		p.ex.Proto, p.ex.StreamID = Proto2, h.sid
		s.streams = append(s.streams, p)
		s.maxID = h.sid
	}
	switch {
	case h.req && !p.reqSeen:
		h.tgt = tgtRequest
	case h.req:
		h.tgt = tgtReqTrailers
	case !p.respFinal:
		h.tgt = tgtResponse
	default:
		h.tgt = tgtTrailers
	}
	h.tp, h.tgen = p, p.gen
	m.touch(p, t)
}

// field takes one decoded header field of the current block.
func (h *h2dir) field(f hpack.HeaderField) {
	p := h.tp
	if p == nil || p.gen != h.tgen {
		return
	}
	ex := &p.ex
	switch h.tgt {
	case tgtRequest:
		switch f.Name {
		case ":method":
			ex.Method = f.Value
		case ":path":
			ex.Path = cutPath(f.Value)
			if len(ex.Path) < len(f.Value) {
				ex.Path = string([]byte(ex.Path)) // keep no byte of the query
			}
		case ":scheme":
			ex.Scheme = f.Value
		case ":authority":
			ex.ServerAddress, ex.ServerPort = splitHostPort(f.Value)
			h.authority = true
		case "host":
			if !h.authority {
				ex.ServerAddress, ex.ServerPort = splitHostPort(f.Value)
			}
		case "user-agent":
			ex.UserAgent = f.Value
		case "traceparent":
			parseTraceparent(f.Value, ex)
		case "content-type":
			ex.GRPC = hasPrefixFold(f.Value, "application/grpc")
		}
	case tgtResponse, tgtTrailers:
		switch f.Name {
		case ":status":
			if h.tgt == tgtResponse {
				ex.StatusCode = max(atoi(f.Value), 0)
			}
		case "grpc-status":
			ex.GRPCStatus = atoi(f.Value)
		}
	}
}

// frameEnd runs at a frame's last byte; false when the connection was
// given up.
func (h *h2dir) frameEnd(m *Matcher, t time.Time) bool {
	h.inFrame = false
	switch h.typ {
	case frameHeaders, framePushPromise, frameContinuation:
		if h.flags&flagEndHeaders == 0 {
			return true
		}
		h.block = false
		if err := h.dec.Close(); err != nil {
			h.lose(m, CauseHPACKDesync, t)
			return false
		}
		h.blockDone(m, t)
	case frameData:
		if h.flags&flagEndStream != 0 {
			if p := h.stream(); p != nil {
				h.endStream(m, p, t)
			}
		}
	}
	return true
}

// blockDone applies a complete header block.
func (h *h2dir) blockDone(m *Matcher, t time.Time) {
	p := h.tp
	h.tp = nil
	if p == nil || p.gen != h.tgen {
		return
	}
	switch h.tgt {
	case tgtRequest:
		ex := &p.ex
		ex.Start, ex.Seq, ex.HasSeq = h.blockT, h.blockSeq, h.blockHasSeq
		if ex.GRPC {
			ex.RPCService, ex.RPCMethod = splitGRPCPath(ex.Path)
		}
		m.requestSeen(p)
	case tgtResponse:
		if ex := &p.ex; ex.StatusCode >= 100 && ex.StatusCode < 200 {
			ex.StatusCode = 0 // interim: the final response follows
		} else {
			p.respFinal = true
		}
	}
	if h.blockEnd {
		h.endStream(m, p, t)
	} else if h.tgt == tgtRequest && p.respEnd {
		m.streamDone(p, p.ex.End)
	}
}

// endStream: END_STREAM from this direction on p.
func (h *h2dir) endStream(m *Matcher, p *pending, t time.Time) {
	if h.req {
		p.reqEnd = true
		if p.respEnd && p.reqSeen {
			m.streamDone(p, p.ex.End)
		}
		return
	}
	p.respEnd = true
	p.ex.End = t
	if p.reqSeen {
		m.streamDone(p, t)
	}
}

// streamDone emits a stream whose response ended.
func (m *Matcher) streamDone(p *pending, end time.Time) {
	p.ex.RespBodySize = p.respBody
	if p.reqEnd {
		p.ex.ReqBodySize = p.reqBody
	}
	p.c.h2.remove(p)
	m.done(p, OutcomeOK, CauseNone, end)
}

// lose gives the connection up: bytes it needed are lost, or it broke the
// protocol.
func (h *h2dir) lose(m *Matcher, cause Cause, t time.Time) {
	m.stats.Lost[cause]++
	h.c.failAll(m, OutcomeLost, cause, t)
	h.c.state = stIgnored
}
