package httpmatch

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// msg is what one end wrote in one call, in conversation order.
type msg struct {
	client bool   // written by the client
	b      []byte // bytes written
	size   int    // bytes moved when more than len(b) (sendfile, a body not shown); 0: len(b)
}

func cmsg(s string) msg { return msg{client: true, b: []byte(s)} }
func smsg(s string) msg { return msg{client: false, b: []byte(s)} }

// conv is a TCP conversation; its chunks are what either end's capture
// reports: each message one call, in order, 10 µs apart.
type conv struct {
	msgs       []msg
	cISN, sISN uint32 // initial sequence numbers (+1) of client and server
}

// view tells how chunks are made from a conversation.
type view struct {
	role    Role // whose capture: RoleClient or RoleServer
	cookie  uint64
	limit   int  // capture limit: Data is at most this many bytes (0: all)
	noOther bool // chunks carry no OtherSeq
	noSeq   bool // chunks carry no Seq
}

func (cv conv) chunks(v view) []Chunk {
	cseq, sseq := cv.cISN, cv.sISN
	out := make([]Chunk, 0, len(cv.msgs))
	for i, mg := range cv.msgs {
		size := len(mg.b)
		if mg.size > size {
			size = mg.size
		}
		own, other := &sseq, &cseq
		if mg.client {
			own, other = &cseq, &sseq
		}
		dir := Received
		if mg.client == (v.role == RoleClient) {
			dir = Sent
		}
		data := mg.b
		if v.limit > 0 && len(data) > v.limit {
			data = data[:v.limit]
		}
		ch := Chunk{
			Conn: v.cookie, PID: 100, Dir: dir, Time: t0.Add(time.Duration(i+1) * 10 * time.Microsecond),
			Seq: *own, HasSeq: !v.noSeq, OtherSeq: *other, HasOtherSeq: !v.noOther && !v.noSeq,
			Size: uint32(size), Data: data,
		}
		out = append(out, ch)
		*own += uint32(size)
	}
	return out
}

// recorder collects emitted exchanges.
type recorder struct {
	m   *Matcher
	got []Exchange
}

func newRecorder(t testing.TB, cfg Config) *recorder {
	t.Helper()
	r := &recorder{}
	m, err := New(cfg, func(e *Exchange) { r.got = append(r.got, *e) })
	require.NoError(t, err)
	r.m = m
	return r
}

func (r *recorder) feed(chs []Chunk) {
	for i := range chs {
		r.m.Add(&chs[i])
	}
}

// run feeds a conversation seen from one end, closes it and returns the
// exchanges.
func run(t testing.TB, cv conv, v view) ([]Exchange, Stats) {
	t.Helper()
	r := newRecorder(t, Config{})
	chs := cv.chunks(v)
	r.feed(chs)
	r.m.Close(v.cookie, chs[len(chs)-1].Time.Add(time.Millisecond))
	checkInvariants(t, r.m)
	return r.got, r.m.Stats()
}

// checkInvariants: every request seen is emitted exactly once or still in
// flight.
func checkInvariants(t testing.TB, m *Matcher) {
	t.Helper()
	s := m.Stats()
	require.Equal(t, s.Requests, s.Exchanges+uint64(m.InFlight()), "requests = exchanges + in flight: %+v", s)
	var sum uint64
	for _, n := range s.Outcomes {
		sum += n
	}
	require.Equal(t, s.Exchanges, sum)
}

func lostTotal(s Stats) uint64 {
	var n uint64
	for _, v := range s.Lost {
		n += v
	}
	return n
}

// seqOf is the Seq of the client's byte at offset off.
func (cv conv) clientSeq(off int) uint32 { return cv.cISN + uint32(off) }

func repeat(s string, n int) string { return strings.Repeat(s, n) }
