package httpmatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBodySkipped: a capture that reports the calls lying wholly inside
// the ranges Body gives by their size alone (as the kernel does once told)
// yields the same exchanges as one that copies every byte: Content-Length
// and chunked bodies in many calls, both directions, a body delimited by
// the close, keep-alive after them.
func TestBodySkipped(t *testing.T) {
	body := func(client bool, n int) []msg {
		var out []msg
		for ; n > 0; n -= 4000 {
			out = append(out, msg{client: client, b: []byte(repeat("b", min(n, 4000)))})
		}
		return out
	}
	var msgs []msg
	msgs = append(msgs, cmsg("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 50000\r\n\r\n"+repeat("b", 1000)))
	msgs = append(msgs, body(true, 49000)...)
	msgs = append(msgs, smsg("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4e20\r\n"))
	msgs = append(msgs, body(false, 20000)...)
	msgs = append(msgs, smsg("\r\n3e8\r\n"+repeat("c", 1000)+"\r\n0\r\n\r\n"))
	msgs = append(msgs, cmsg("GET /old HTTP/1.1\r\nHost: a\r\n\r\n"))
	msgs = append(msgs, smsg("HTTP/1.0 200 OK\r\n\r\n"+repeat("d", 100)))
	msgs = append(msgs, body(false, 30000)...)
	cv := conv{msgs: msgs, cISN: 1000, sISN: 0xffff0000} // the server's wraps
	for _, role := range []Role{RoleServer, RoleClient} {
		v := view{role: role, cookie: 7, limit: 4096}
		chs := cv.chunks(v)
		end := chs[len(chs)-1].Time.Add(time.Millisecond)

		full := newRecorder(t, Config{})
		full.feed(chs)
		full.m.Close(v.cookie, end)

		skip := newRecorder(t, Config{})
		skipped := 0
		for i := range chs {
			ch := chs[i]
			if from, to, ok := skip.m.Body(ch.Conn, ch.Dir); ok && ch.Seq-from < to-from && ch.Size <= to-from-(ch.Seq-from) {
				ch.Data = nil
				skipped++
			}
			skip.m.Add(&ch)
		}
		skip.m.Close(v.cookie, end)
		checkInvariants(t, skip.m)

		require.Equal(t, 2, len(full.got), "role %v", role)
		require.Equal(t, full.got, skip.got, "role %v", role)
		require.Equal(t, int64(50000), full.got[0].ReqBodySize)
		require.Equal(t, int64(21000), full.got[0].RespBodySize)
		require.Equal(t, int64(30100), full.got[1].RespBodySize)
		// Every call after the one with the head: 13 + 5 + 8.
		require.Equal(t, 26, skipped, "role %v: calls skipped", role)
	}
}

// TestBodyRanges: what Body reports between messages, inside a head,
// inside a Content-Length body, for a connection not known.
func TestBodyRanges(t *testing.T) {
	r := newRecorder(t, Config{})
	_, _, ok := r.m.Body(7, Received)
	require.False(t, ok, "unknown connection")
	head := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
	cv := conv{msgs: []msg{cmsg(head), cmsg("\r\n123"), cmsg("4567890")}, cISN: 500}
	chs := cv.chunks(view{role: RoleServer, cookie: 7})
	r.m.Add(&chs[0])
	_, _, ok = r.m.Body(7, Received)
	require.False(t, ok, "inside a head")
	r.m.Add(&chs[1])
	from, to, ok := r.m.Body(7, Received)
	require.True(t, ok)
	require.Equal(t, uint32(500+len(head)+5), from)
	require.Equal(t, from+7, to)
	_, _, ok = r.m.Body(7, Sent)
	require.False(t, ok, "the other direction")
	r.m.Add(&chs[2])
	_, _, ok = r.m.Body(7, Received)
	require.False(t, ok, "between messages")
}
