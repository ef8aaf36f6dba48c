package httpmatch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	reqGet  = "GET /api/v1/items?token=s3cr3t&x=1 HTTP/1.1\r\nHost: shop.example:8080\r\nUser-Agent: curl/8.1\r\nAuthorization: Bearer planted-secret\r\nCookie: session=planted-cookie\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n"
	respOK  = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: id=planted-setcookie\r\n\r\nhello"
	respErr = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
)

func TestHTTP1Basic(t *testing.T) {
	cv := conv{msgs: []msg{cmsg(reqGet), smsg(respOK)}, cISN: 1000, sISN: 9000}
	for _, role := range []Role{RoleClient, RoleServer} {
		got, st := run(t, cv, view{role: role, cookie: 7})
		require.Len(t, got, 1, "%v %+v", role, st)
		e := got[0]
		assert.Equal(t, Exchange{
			Conn: 7, PID: 100, Role: role, Proto: Proto11, Outcome: OutcomeOK,
			Start: t0.Add(10 * time.Microsecond), End: t0.Add(20 * time.Microsecond),
			Seq: 1000, HasSeq: true,
			Method: "GET", Path: "/api/v1/items", Scheme: "http", ServerAddress: "shop.example", ServerPort: 8080,
			UserAgent: "curl/8.1", StatusCode: 200, ReqBodySize: 0, RespBodySize: 5,
			HasTraceparent: true,
			TraceID:        [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
			ParentSpanID:   [8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
			TraceFlags:     1,
			GRPCStatus:     -1,
		}, e)
		assert.Zero(t, lostTotal(st))
	}
}

// TestKeepAliveNoGrowth: hundreds of thousands of exchanges on one
// connection leave no state behind and allocate nothing per exchange once
// warm.
func TestKeepAliveNoGrowth(t *testing.T) {
	const n = 300000
	var count int
	m, err := New(Config{}, func(e *Exchange) {
		count++
		if e.StatusCode != 200 || e.Outcome != OutcomeOK {
			t.Fatalf("bad exchange %+v", e)
		}
	})
	require.NoError(t, err)
	req := []byte("GET /ping HTTP/1.1\r\nHost: a\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	var cs, ss uint32 = 1, 1
	now := t0
	step := func() {
		now = now.Add(time.Microsecond)
		m.Add(&Chunk{Conn: 1, Dir: Sent, Time: now, Seq: cs, HasSeq: true, OtherSeq: ss, HasOtherSeq: true, Size: uint32(len(req)), Data: req})
		cs += uint32(len(req))
		m.Add(&Chunk{Conn: 1, Dir: Received, Time: now, Seq: ss, HasSeq: true, OtherSeq: cs, HasOtherSeq: true, Size: uint32(len(resp)), Data: resp})
		ss += uint32(len(resp))
	}
	for range 1000 {
		step()
	}
	allocs := testing.AllocsPerRun(n, step)
	assert.Zero(t, allocs, "allocations per exchange")
	c := m.conns[1]
	assert.LessOrEqual(t, len(c.q.s), 4, "queue capacity")
	assert.Zero(t, m.InFlight())
	assert.Zero(t, m.npending)
	assert.LessOrEqual(t, len(m.free), 1024)
	assert.Equal(t, n+1000+1, count) // AllocsPerRun runs once more to warm up
	assert.Zero(t, lostTotal(m.Stats()))
}

func TestPipelining(t *testing.T) {
	// Three requests in one write, answers in two writes: a HEAD (no body
	// despite Content-Length), a 204, a chunked one.
	reqs := "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\nDELETE /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n"
	resps1 := "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
	resps2 := "10;ext=1\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\n"
	cv := conv{msgs: []msg{cmsg(reqs), smsg(resps1), smsg(resps2)}, cISN: 1, sISN: 1}
	for _, role := range []Role{RoleClient, RoleServer} {
		got, st := run(t, cv, view{role: role, cookie: 1})
		require.Len(t, got, 3, "%+v", st)
		assert.Equal(t, []string{"HEAD", "DELETE", "GET"}, []string{got[0].Method, got[1].Method, got[2].Method})
		assert.Equal(t, []int{200, 204, 200}, []int{got[0].StatusCode, got[1].StatusCode, got[2].StatusCode})
		assert.Equal(t, []int64{0, 0, 19}, []int64{got[0].RespBodySize, got[1].RespBodySize, got[2].RespBodySize})
		assert.Equal(t, []uint32{1, 30, 61}, []uint32{got[0].Seq, got[1].Seq, got[2].Seq})
		assert.Equal(t, got[2].End, t0.Add(30*time.Microsecond))
		assert.Zero(t, lostTotal(st))
	}
}

func TestChunkedBothWays(t *testing.T) {
	req := "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	cv := conv{msgs: []msg{
		cmsg(req), cmsg("5\r\nhello\r\n"), cmsg("6\r\n world\r\n0\r\nChecksum: x\r\n\r\n"),
		smsg("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
	}, cISN: 5, sISN: 5}
	got, st := run(t, cv, view{role: RoleServer, cookie: 1})
	require.Len(t, got, 1, "%+v", st)
	assert.Equal(t, int64(11), got[0].ReqBodySize)
	assert.Equal(t, int64(2), got[0].RespBodySize)
	assert.Equal(t, 201, got[0].StatusCode)
}

func TestExpectContinue(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"),
		smsg("HTTP/1.1 100 Continue\r\n\r\n"),
		cmsg("0123456789"),
		smsg("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
	}, cISN: 1, sISN: 1}
	for _, role := range []Role{RoleClient, RoleServer} {
		got, st := run(t, cv, view{role: role, cookie: 1})
		require.Len(t, got, 1)
		assert.Equal(t, 201, got[0].StatusCode)
		assert.Equal(t, int64(10), got[0].ReqBodySize)
		assert.Equal(t, t0.Add(40*time.Microsecond), got[0].End)
		assert.Zero(t, lostTotal(st))
	}
}

func TestHeadAnd304(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n"),
		smsg("HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n"),
		cmsg("GET /big HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n"),
		smsg("HTTP/1.1 304 Not Modified\r\nContent-Length: 10485760\r\n\r\n"),
		cmsg("GET /next HTTP/1.1\r\nHost: h\r\n\r\n"),
		smsg("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!"),
	}, cISN: 1, sISN: 1}
	got, st := run(t, cv, view{role: RoleClient, cookie: 1})
	require.Len(t, got, 3)
	assert.Equal(t, []int{200, 304, 404}, []int{got[0].StatusCode, got[1].StatusCode, got[2].StatusCode})
	assert.Zero(t, lostTotal(st))
}

// TestBodiesPastTheCapture: a 10 MiB body written in 64 KiB calls of which
// 256 bytes each are captured, Content-Length and chunked: followed by
// size, the next exchange is found.
func TestBodiesPastTheCapture(t *testing.T) {
	const total = 10 << 20
	big := make([]byte, 64<<10)
	var msgs []msg
	msgs = append(msgs, cmsg("GET /10m HTTP/1.1\r\nHost: h\r\n\r\n"))
	msgs = append(msgs, msg{b: []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", total))})
	for i := 0; i < total/len(big); i++ {
		msgs = append(msgs, msg{b: big})
	}
	// A chunked response whose chunks each fill a call: the size lines
	// start the calls, inside the capture.
	msgs = append(msgs, cmsg("GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n"))
	msgs = append(msgs, smsg("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
	for i := 0; i < 50; i++ {
		msgs = append(msgs, msg{b: append([]byte("10000\r\n"), append(big, "\r\n"...)...)})
	}
	msgs = append(msgs, smsg("0\r\n\r\n"))
	msgs = append(msgs, cmsg("GET /after HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respOK))
	cv := conv{msgs: msgs, cISN: 1, sISN: 1}
	for _, role := range []Role{RoleClient, RoleServer} {
		r := newRecorder(t, Config{})
		r.feed(cv.chunks(view{role: role, cookie: 1, limit: 256}))
		require.Len(t, r.got, 3)
		assert.Equal(t, int64(total), r.got[0].RespBodySize)
		assert.Equal(t, int64(50<<16), r.got[1].RespBodySize)
		assert.Equal(t, "/after", r.got[2].Path)
		assert.Zero(t, lostTotal(r.m.Stats()))
	}
}

// TestChunkHeadersPastTheCapture: chunk-size lines inside uncaptured bytes
// cannot be followed: counted, the exchange reported lost with its
// status, and the next exchange found again.
func TestChunkHeadersPastTheCapture(t *testing.T) {
	var body strings.Builder
	for i := 0; i < 40; i++ {
		body.WriteString("100\r\n" + repeat("x", 256) + "\r\n")
	}
	body.WriteString("0\r\n\r\n")
	cv := conv{msgs: []msg{
		cmsg("GET /c HTTP/1.1\r\nHost: h\r\n\r\n"),
		smsg("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body.String()),
		cmsg("GET /d HTTP/1.1\r\nHost: h\r\n\r\n"),
		smsg(respOK),
	}, cISN: 1, sISN: 1}
	r := newRecorder(t, Config{})
	r.feed(cv.chunks(view{role: RoleClient, cookie: 1, limit: 1024}))
	require.Len(t, r.got, 2)
	assert.Equal(t, OutcomeLost, r.got[0].Outcome)
	assert.Equal(t, CauseUncaptured, r.got[0].Cause)
	assert.Equal(t, 200, r.got[0].StatusCode)
	assert.Equal(t, OutcomeOK, r.got[1].Outcome)
	assert.Equal(t, "/d", r.got[1].Path)
	assert.Equal(t, uint64(1), r.m.Stats().Lost[CauseUncaptured])
}

func TestCloseDelimited(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("GET /old HTTP/1.0\r\nHost: h\r\n\r\n"),
		smsg("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome"),
		smsg(" more"),
	}, cISN: 1, sISN: 1}
	for _, role := range []Role{RoleClient, RoleServer} {
		got, st := run(t, cv, view{role: role, cookie: 1})
		require.Len(t, got, 1)
		assert.Equal(t, OutcomeOK, got[0].Outcome)
		assert.Equal(t, Proto10, got[0].Proto)
		assert.Equal(t, int64(9), got[0].RespBodySize)
		assert.Equal(t, t0.Add(30*time.Microsecond), got[0].End, "the last byte, not the close")
		assert.Zero(t, lostTotal(st))
	}
	// The client sees the end of stream before it closes.
	r := newRecorder(t, Config{})
	chs := cv.chunks(view{role: RoleClient, cookie: 1})
	r.feed(chs)
	r.m.Add(&Chunk{Conn: 1, Dir: Received, Time: t0.Add(time.Second)})
	require.Len(t, r.got, 1)
	assert.Equal(t, OutcomeOK, r.got[0].Outcome)
}

func TestClosedMidResponse(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
		smsg("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"),
		cmsg("GET /b HTTP/1.1\r\nHost: h\r\n\r\n"), // pipelined, never answered
	}, cISN: 1, sISN: 1}
	got, st := run(t, cv, view{role: RoleClient, cookie: 1})
	require.Len(t, got, 2)
	assert.Equal(t, OutcomeClosed, got[0].Outcome)
	assert.Equal(t, 200, got[0].StatusCode)
	assert.Equal(t, OutcomeClosed, got[1].Outcome)
	assert.Equal(t, 0, got[1].StatusCode)
	assert.Zero(t, lostTotal(st))
}
