package dnsmatch

import (
	"encoding/binary"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// DNS over TCP (RFC 1035 4.2.2, RFC 7766): each message is preceded by its
// two-byte length, and a message may span segments or share one. Each
// direction of a socket is a stream, reassembled by sequence number.
//
// Segments ahead of the expected sequence number (reordered, or after a
// segment the capture lost) are held until the bytes before them arrive. A
// gap that is not filled in time, or whose segments outgrow the stream's
// buffer, is given up: the partial message before it is dropped and counted
// Malformed, and the first held segment is taken to start a message.

// maxStreamBuffer bounds one stream's held bytes (unframed plus out of
// order): a message is at most 64 KiB plus its length prefix.
const maxStreamBuffer = 2 + 65535

// maxHeld bounds the out-of-order segments held per stream.
const maxHeld = 16

type streamKey struct {
	cookie uint64
	egress bool
}

type stream struct {
	key       streamKey
	next      uint32               // sequence number expected next
	buf       []byte               // bytes received in order but not yet framed into a message
	skip      int                  // bytes of a message past the capture still to pass over
	held      []observed.DNSPacket // segments past a gap, by Seq; Payload copied
	heldBytes int
	heldSince time.Time // when the oldest unfilled gap was seen
	last      time.Time
	prev, nxt *stream // least recently used first
}

// streams is an LRU of the TCP streams being reassembled.
type streams struct {
	max        int
	m          map[streamKey]*stream
	head, tail *stream
	gapped     map[*stream]struct{} // streams holding segments past a gap
}

func (ss *streams) init(max int) {
	ss.max = max
	ss.m = make(map[streamKey]*stream)
	ss.gapped = make(map[*stream]struct{})
}

func (ss *streams) unlink(s *stream) {
	if s.prev != nil {
		s.prev.nxt = s.nxt
	} else {
		ss.head = s.nxt
	}
	if s.nxt != nil {
		s.nxt.prev = s.prev
	} else {
		ss.tail = s.prev
	}
	s.prev, s.nxt = nil, nil
}

func (ss *streams) pushBack(s *stream) {
	s.prev = ss.tail
	if ss.tail != nil {
		ss.tail.nxt = s
	} else {
		ss.head = s
	}
	ss.tail = s
}

func (ss *streams) remove(s *stream) {
	ss.unlink(s)
	delete(ss.m, s.key)
	delete(ss.gapped, s)
}

// seqLess compares TCP sequence numbers across wrap-around.
func seqLess(a, b uint32) bool { return int32(a-b) < 0 }

func (m *Matcher) addTCP(p *observed.DNSPacket) {
	if p.Len == 0 {
		return // SYN, FIN, ACK: no DNS bytes
	}
	ss := &m.streams
	k := streamKey{cookie: p.Cookie, egress: p.Egress}
	s, ok := ss.m[k]
	if ok {
		ss.unlink(s)
	} else {
		if len(ss.m) >= ss.max {
			m.stats.StreamsEvicted++
			ss.remove(ss.head)
		}
		// The first segment seen starts a message: the probe sees every
		// segment of a connection opened after it attached.
		s = &stream{key: k, next: p.Seq}
		ss.m[k] = s
	}
	ss.pushBack(s)
	s.last = p.Time

	if seqLess(s.next, p.Seq) {
		m.hold(s, p)
		return
	}
	m.segment(s, p)
	m.drain(s)
}

// hold keeps a copy of a segment past a gap, giving gaps up while the
// stream cannot hold more.
func (m *Matcher) hold(s *stream, p *observed.DNSPacket) {
	for len(s.held) >= maxHeld || len(s.buf)+s.heldBytes+len(p.Payload) > maxStreamBuffer {
		m.giveUpGap(s)
		if len(s.held) == 0 {
			s.next = p.Seq
		}
		m.drain(s)
		if !seqLess(s.next, p.Seq) {
			m.segment(s, p)
			m.drain(s)
			return
		}
	}
	i := len(s.held)
	for i > 0 && seqLess(p.Seq, s.held[i-1].Seq) {
		i--
	}
	if i > 0 && s.held[i-1].Seq == p.Seq {
		return // the same segment again
	}
	c := *p
	c.Payload = append([]byte(nil), p.Payload...)
	s.held = append(s.held, observed.DNSPacket{})
	copy(s.held[i+1:], s.held[i:])
	s.held[i] = c
	if s.heldBytes == 0 {
		s.heldSince = p.Time
		m.streams.gapped[s] = struct{}{}
	}
	s.heldBytes += len(c.Payload)
}

// drain processes held segments the stream has caught up with.
func (m *Matcher) drain(s *stream) {
	for len(s.held) > 0 && !seqLess(s.next, s.held[0].Seq) {
		h := s.held[0]
		s.held[0] = observed.DNSPacket{}
		s.held = s.held[1:]
		s.heldBytes -= len(h.Payload)
		m.segment(s, &h)
	}
	if len(s.held) == 0 {
		s.held, s.heldBytes = nil, 0
		delete(m.streams.gapped, s)
	}
}

// giveUpGap drops the partial message before a gap and resumes at the first
// held segment.
func (m *Matcher) giveUpGap(s *stream) {
	m.stats.Malformed++
	s.buf, s.skip = s.buf[:0], 0
	if len(s.held) > 0 {
		s.next = s.held[0].Seq
	}
}

// expireStreams gives up gaps older than wait, then forgets streams idle for
// longer than the timeout (their connection is done; nothing is lost).
func (m *Matcher) expireStreams(now time.Time, wait time.Duration) {
	ss := &m.streams
	for s := range ss.gapped {
		if now.Sub(s.heldSince) >= wait {
			m.giveUpGap(s)
			m.drain(s)
		}
	}
	for s := ss.head; s != nil && now.Sub(s.last) > m.cfg.Timeout; s = ss.head {
		if len(s.held) > 0 {
			m.giveUpGap(s)
			m.drain(s)
		}
		ss.remove(s)
	}
}

// segment processes a segment that starts at or before s.next.
func (m *Matcher) segment(s *stream, p *observed.DNSPacket) {
	end := p.Seq + p.Len
	if !seqLess(s.next, end) {
		return // all of it seen before: a retransmission
	}
	data := p.Payload
	capEnd := p.Seq + uint32(len(data))
	from := s.next
	if seqLess(capEnd, from) {
		capEnd = from
	}
	// Keep the captured bytes not seen before; the rest up to end is wire
	// data the capture did not keep.
	data = data[from-p.Seq : capEnd-p.Seq]
	missing := int(end - capEnd)
	s.next = end

	if s.skip > 0 {
		n := min(s.skip, len(data))
		data, s.skip = data[n:], s.skip-n
		if s.skip > 0 {
			n = min(s.skip, missing)
			missing, s.skip = missing-n, s.skip-n
			if missing > 0 {
				m.lostFraming(s)
			}
			return
		}
	}
	if len(s.buf)+len(data) > maxStreamBuffer {
		m.lostFraming(s)
		return
	}
	s.buf = append(s.buf, data...)
	buf := s.buf
	for len(buf) >= 2 {
		n := int(binary.BigEndian.Uint16(buf))
		if len(buf)-2 < n {
			break
		}
		m.message(p, buf[2:2+n], false)
		buf = buf[2+n:]
	}
	if missing > 0 {
		// The capture kept a prefix of this segment: parse what there is
		// of the message it ends in, then pass over the rest of it.
		if len(buf) < 2 {
			m.lostFraming(s) // even the length was cut
			return
		}
		n := int(binary.BigEndian.Uint16(buf))
		m.message(p, buf[2:], true)
		rest := n - (len(buf) - 2)
		if missing > rest {
			m.lostFraming(s) // the missing bytes held the next length too
			return
		}
		s.skip = rest - missing
		buf = buf[:0]
	}
	s.buf = append(s.buf[:0], buf...)
}

// lostFraming drops what is buffered when message boundaries can no longer
// be known; the next segment is taken to start a message.
func (m *Matcher) lostFraming(s *stream) {
	m.stats.Malformed++
	s.buf, s.skip = s.buf[:0], 0
}
