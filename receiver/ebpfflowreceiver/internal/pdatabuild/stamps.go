package pdatabuild

import (
	"time"
	"unsafe"
)

// stampChunk is the size of the buffers stamps are written into.
const stampChunk = 32 << 10

// stamps formats the RFC 3339 (nanosecond) times of flow records: two per
// record, each otherwise a time.Format and an allocation. The date and
// clock part is formatted once per second, and the strings are slices of
// a shared, append-only buffer (a chunk lives as long as any record that
// holds one of its strings; bytes once handed out are never written
// again). Not safe for concurrent use, like the Builder.
type stamps struct {
	sec    int64  // the second prefix was formatted for
	prefix []byte // "2006-01-02T15:04:05" of sec, UTC
	buf    []byte // current chunk: [0:len) handed out, the rest free
}

// format returns t.UTC().Format(time.RFC3339Nano).
func (s *stamps) format(t time.Time) string {
	t = t.UTC()
	if sec := t.Unix(); sec != s.sec || s.prefix == nil {
		s.sec = sec
		s.prefix = t.AppendFormat(s.prefix[:0], "2006-01-02T15:04:05")
	}
	const maxLen = 64 // prefix (longer for years beyond 9999) + ".999999999Z"
	if cap(s.buf)-len(s.buf) < maxLen {
		s.buf = make([]byte, 0, stampChunk)
	}
	start := len(s.buf)
	b := append(s.buf, s.prefix...)
	if ns := t.Nanosecond(); ns != 0 {
		// RFC3339Nano: nine digits, trailing zeros (and a bare dot) trimmed.
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	b = append(b, 'Z')
	s.buf = b
	return unsafe.String(&b[start], len(b)-start)
}
