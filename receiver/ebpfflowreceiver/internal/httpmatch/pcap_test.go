package httpmatch

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// A minimal reader of classic pcap files (what dumpcap -P writes) for the
// captures in testdata: Ethernet (loopback), IPv4 or IPv6, TCP.

type tcpSeg struct {
	frame    int // 1-based, as tshark numbers frames
	t        time.Time
	src, dst netip.AddrPort
	seq      uint32
	syn, fin bool
	wire     int    // payload bytes on the wire
	data     []byte // payload bytes captured (a prefix when the snap length cut it)
}

// tcpConn is one connection of a capture, numbered as tshark's tcp.stream.
type tcpConn struct {
	index          int
	client, server netip.AddrPort
	segs           []tcpSeg
}

func readPcap(path string) ([]tcpSeg, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("%s: short file", path)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	nano := false
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4:
	case 0xa1b23c4d:
		nano = true
	default:
		bo = binary.BigEndian
		switch binary.BigEndian.Uint32(b) {
		case 0xa1b2c3d4:
		case 0xa1b23c4d:
			nano = true
		default:
			return nil, fmt.Errorf("%s: not a classic pcap file", path)
		}
	}
	if lt := bo.Uint32(b[20:]); lt != 1 {
		return nil, fmt.Errorf("%s: link type %d, want Ethernet", path, lt)
	}
	var segs []tcpSeg
	frame := 0
	for off := 24; off+16 <= len(b); {
		sec, sub := bo.Uint32(b[off:]), bo.Uint32(b[off+4:])
		capLen := int(bo.Uint32(b[off+8:]))
		off += 16
		if off+capLen > len(b) {
			return nil, fmt.Errorf("%s: record past the end", path)
		}
		pkt := b[off : off+capLen]
		off += capLen
		frame++
		ns := int64(sub) * 1000
		if nano {
			ns = int64(sub)
		}
		if s, ok := parseFrame(pkt); ok {
			s.frame, s.t = frame, time.Unix(int64(sec), ns).UTC()
			segs = append(segs, s)
		}
	}
	return segs, nil
}

func parseFrame(p []byte) (tcpSeg, bool) {
	var s tcpSeg
	if len(p) < 14 {
		return s, false
	}
	et := binary.BigEndian.Uint16(p[12:])
	p = p[14:]
	var src, dst netip.Addr
	var l4 []byte
	var l4wire int
	switch et {
	case 0x0800:
		if len(p) < 20 || p[9] != 6 {
			return s, false
		}
		ihl := int(p[0]&0xf) * 4
		total := int(binary.BigEndian.Uint16(p[2:]))
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		l4, l4wire = p[ihl:], total-ihl
	case 0x86dd:
		if len(p) < 40 || p[6] != 6 {
			return s, false
		}
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		l4, l4wire = p[40:], int(binary.BigEndian.Uint16(p[4:]))
	default:
		return s, false
	}
	if len(l4) < 20 {
		return s, false
	}
	doff := int(l4[12]>>4) * 4
	flags := l4[13]
	s.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4))
	s.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:]))
	s.seq = binary.BigEndian.Uint32(l4[4:])
	s.syn, s.fin = flags&0x02 != 0, flags&0x01 != 0
	s.wire = l4wire - doff
	if doff < len(l4) {
		s.data = l4[doff:min(len(l4), l4wire)]
	}
	return s, true
}

// conns groups segments into connections in order of first appearance;
// the client is the end that sent the SYN.
func conns(segs []tcpSeg) []*tcpConn {
	type key struct{ a, b netip.AddrPort }
	byKey := map[key]*tcpConn{}
	var out []*tcpConn
	for _, s := range segs {
		k := key{s.src, s.dst}
		if s.dst.Addr().Less(s.src.Addr()) || s.dst.Addr() == s.src.Addr() && s.dst.Port() < s.src.Port() {
			k = key{s.dst, s.src}
		}
		c := byKey[k]
		if c == nil {
			c = &tcpConn{index: len(out), client: s.src, server: s.dst}
			byKey[k] = c
			out = append(out, c)
		}
		if s.syn && !(s.src == c.client) && len(c.segs) == 0 {
			c.client, c.server = s.dst, s.src
		}
		c.segs = append(c.segs, s)
	}
	return out
}

// chunks is what the capture of one end of c would report: each segment
// with payload a call (loopback sends a write as one segment); a FIN from
// the peer an end of stream; limit cuts Data as the capture limit does.
func (c *tcpConn) chunks(role Role, limit int) (chs []Chunk, last time.Time) {
	local := c.client
	if role == RoleServer {
		local = c.server
	}
	var next [2]uint32
	var seen [2]bool
	for _, s := range c.segs {
		last = s.t
		d := Received
		if s.src == local {
			d = Sent
		}
		if s.syn {
			next[d-1], seen[d-1] = s.seq+1, true
			continue
		}
		if s.wire > 0 {
			data := s.data
			if limit > 0 && len(data) > limit {
				data = data[:limit]
			}
			o := d.other()
			chs = append(chs, Chunk{Conn: uint64(c.index + 1), PID: 1, Dir: d, Time: s.t,
				Seq: s.seq, HasSeq: true, OtherSeq: next[o-1], HasOtherSeq: seen[o-1],
				Size: uint32(s.wire), Data: data})
			if end := s.seq + uint32(s.wire); !seen[d-1] || seqLess(next[d-1], end) {
				next[d-1], seen[d-1] = end, true
			}
		}
		if s.fin && d == Received {
			chs = append(chs, Chunk{Conn: uint64(c.index + 1), PID: 1, Dir: Received, Time: s.t,
				Seq: next[Received-1], HasSeq: true})
		}
	}
	return chs, last
}
