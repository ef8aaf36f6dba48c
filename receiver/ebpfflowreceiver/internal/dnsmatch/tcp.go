package dnsmatch

import (
	"encoding/binary"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/record"
)

// DNS over TCP (RFC 1035 4.2.2, RFC 7766): each message is preceded by its
// two-byte length, and a message may span segments or share one. Each
// direction of a socket is a stream, reassembled by sequence number.

// maxStreamBuffer bounds one stream's unframed bytes: a message is at most
// 64 KiB plus its length prefix.
const maxStreamBuffer = 2 + 65535

type streamKey struct {
	cookie uint64
	egress bool
}

type stream struct {
	key       streamKey
	next      uint32 // sequence number expected next
	buf       []byte // bytes received but not yet framed into a message
	skip      int    // bytes of a message past the capture still to pass over
	last      time.Time
	prev, nxt *stream // least recently used first
}

// streams is an LRU of the TCP streams being reassembled.
type streams struct {
	max        int
	m          map[streamKey]*stream
	head, tail *stream
}

func (ss *streams) init(max int) {
	ss.max = max
	ss.m = make(map[streamKey]*stream)
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

// seqLess compares TCP sequence numbers across wrap-around.
func seqLess(a, b uint32) bool { return int32(a-b) < 0 }

func (m *Matcher) addTCP(p *record.DNSPacket) {
	if p.Len == 0 {
		return
	}
	ss := &m.streams
	k := streamKey{cookie: p.Cookie, egress: p.Egress}
	s, ok := ss.m[k]
	if ok {
		ss.unlink(s)
	} else {
		if len(ss.m) >= ss.max {
			old := ss.head
			ss.unlink(old)
			delete(ss.m, old.key)
			m.stats.StreamsEvicted++
		}
		// The first segment seen starts a message: the probe sees every
		// segment of a connection opened after it attached.
		s = &stream{key: k, next: p.Seq}
		ss.m[k] = s
	}
	ss.pushBack(s)
	s.last = p.Time

	data := p.Payload
	end := p.Seq + p.Len
	capturedEnd := p.Seq + uint32(len(data))
	switch {
	case !seqLess(s.next, end): // all of it seen before: a retransmission
		return
	case seqLess(s.next, p.Seq): // bytes between went missing: resynchronise here
		m.stats.Malformed++
		s.buf, s.skip = s.buf[:0], 0
	case seqLess(p.Seq, s.next): // partly seen before: drop the old bytes
		old := s.next - p.Seq
		if old >= uint32(len(data)) {
			data = nil
		} else {
			data = data[old:]
		}
	}
	s.next = end

	if s.skip > 0 {
		n := min(s.skip, len(data))
		data, s.skip = data[n:], s.skip-n
	}
	if len(s.buf)+len(data) > maxStreamBuffer {
		m.stats.Malformed++
		s.buf = s.buf[:0]
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
	if missing := int(end - capturedEnd); missing > 0 {
		// The capture kept a prefix of this segment: parse what there is
		// of the message it ends in, then pass over the rest of it.
		switch {
		case len(buf) < 2:
			m.stats.Malformed++ // even the length was cut: framing is lost
		default:
			n := int(binary.BigEndian.Uint16(buf))
			m.message(p, buf[2:], true)
			rest := n - (len(buf) - 2)
			switch {
			case missing <= rest:
				s.skip = rest - missing
			default:
				m.stats.Malformed++ // the missing bytes held the next length too
			}
		}
		buf = buf[:0]
	}
	s.buf = append(s.buf[:0], buf...)
}

// expireStreams forgets streams idle for longer than the timeout: their
// connection is done. Called from Flush; not counted, nothing is lost.
func (m *Matcher) expireStreams(now time.Time) {
	ss := &m.streams
	for s := ss.head; s != nil && now.Sub(s.last) > m.cfg.Timeout; s = ss.head {
		ss.unlink(s)
		delete(ss.m, s.key)
	}
}
