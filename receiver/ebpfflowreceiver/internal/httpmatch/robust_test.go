package httpmatch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mixed is a conversation with every HTTP/1 framing: Content-Length,
// chunked both ways with trailers and extensions, 100-continue, HEAD,
// 204, pipelining.
var mixed = conv{msgs: []msg{
	cmsg(reqGet), smsg(respOK),
	cmsg("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;a=b\r\npedia\r\n0\r\nT: 1\r\n\r\n"),
	smsg("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"),
	cmsg("PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"),
	smsg("HTTP/1.1 100 Continue\r\n\r\n"),
	cmsg("0123456789"),
	smsg("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
	cmsg("HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nDELETE /d HTTP/1.1\r\nHost: h\r\n\r\n"),
	smsg("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
	cmsg("GET /last HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respErr),
}, cISN: 4000000000, sISN: 300} // the client's sequence numbers wrap

// TestSplitAtEveryByte: every call split in two at every offset gives the
// same exchanges, from both ends.
func TestSplitAtEveryByte(t *testing.T) {
	for _, role := range []Role{RoleClient, RoleServer} {
		v := view{role: role, cookie: 3}
		want, st := run(t, mixed, v)
		require.Len(t, want, 6, "%+v", st)
		require.Zero(t, lostTotal(st))
		base := mixed.chunks(v)
		for i := range base {
			for k := 1; k < len(base[i].Data); k++ {
				chs := splitChunk(base, i, k)
				r := newRecorder(t, Config{})
				r.feed(chs)
				r.m.Close(3, t0.Add(time.Second))
				require.Equal(t, want, r.got, "%v: call %d split at %d", role, i, k)
				require.Zero(t, lostTotal(r.m.Stats()))
			}
		}
	}
}

// splitChunk splits chunk i at byte k into two calls completing together.
func splitChunk(chs []Chunk, i, k int) []Chunk {
	out := append([]Chunk(nil), chs[:i]...)
	a, b := chs[i], chs[i]
	a.Data, a.Size = a.Data[:k], uint32(k)
	b.Data, b.Size, b.Seq = b.Data[k:], b.Size-uint32(k), b.Seq+uint32(k)
	if b.Dir == Sent {
		// the second part's OtherSeq is unchanged
	}
	return append(append(out, a, b), chs[i+1:]...)
}

// TestCoalescedReads: the receiving end reads several writes at once, at
// any boundary.
func TestCoalescedReads(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n"), cmsg("part"), cmsg("two!"),
		cmsg("GET /b HTTP/1.1\r\nHost: h\r\n\r\n"),
		smsg("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"), smsg("ok"), smsg(respErr),
	}, cISN: 1, sISN: 1}
	for _, role := range []Role{RoleClient, RoleServer} {
		v := view{role: role, cookie: 3}
		want, _ := run(t, cv, v)
		require.Len(t, want, 2)
		chs := cv.chunks(v)
		// All bytes of each direction in one stream, re-cut into reads.
		var stream [2][]byte
		var seq [2]uint32
		for _, c := range chs {
			if len(stream[c.Dir-1]) == 0 {
				seq[c.Dir-1] = c.Seq
			}
			stream[c.Dir-1] = append(stream[c.Dir-1], c.Data...)
		}
		reqDir := Received
		if role == RoleClient {
			reqDir = Sent
		}
		for cut := 1; cut < len(stream[reqDir-1]); cut += 7 {
			var re []Chunk
			for _, dir := range []Dir{Sent, Received} {
				if (dir == Sent) == (role == RoleClient) { // the requests
					b := stream[dir-1]
					re = append(re, Chunk{Conn: 3, Dir: dir, Time: t0, Seq: seq[dir-1], HasSeq: true, Size: uint32(cut), Data: b[:cut]})
					re = append(re, Chunk{Conn: 3, Dir: dir, Time: t0, Seq: seq[dir-1] + uint32(cut), HasSeq: true, Size: uint32(len(b) - cut), Data: b[cut:]})
				}
			}
			for _, dir := range []Dir{Sent, Received} {
				if (dir == Sent) != (role == RoleClient) {
					b := stream[dir-1]
					re = append(re, Chunk{Conn: 3, Dir: dir, Time: t0, Seq: seq[dir-1], HasSeq: true, Size: uint32(len(b)), Data: b})
				}
			}
			r := newRecorder(t, Config{})
			r.feed(re)
			require.Len(t, r.got, 2, "cut %d", cut)
			for i := range want {
				assert.Equal(t, want[i].Path, r.got[i].Path)
				assert.Equal(t, want[i].StatusCode, r.got[i].StatusCode)
				assert.Equal(t, want[i].ReqBodySize, r.got[i].ReqBodySize)
				assert.Equal(t, want[i].Seq, r.got[i].Seq)
			}
			assert.Zero(t, lostTotal(r.m.Stats()))
		}
	}
}

// drop returns chs without the chunks at the given indexes: calls the
// capture lost.
func drop(chs []Chunk, idx ...int) []Chunk {
	var out []Chunk
	for i, c := range chs {
		skip := false
		for _, j := range idx {
			skip = skip || i == j
		}
		if !skip {
			out = append(out, c)
		}
	}
	return out
}

func TestGapInsideBody(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("GET /f HTTP/1.1\r\nHost: h\r\n\r\n"),
		smsg("HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"),
		smsg(repeat("a", 1000)), smsg(repeat("b", 1000)), smsg(repeat("c", 1000)),
		cmsg("GET /g HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respOK),
	}, cISN: 1, sISN: 1}
	for _, role := range []Role{RoleClient, RoleServer} {
		r := newRecorder(t, Config{})
		r.feed(drop(cv.chunks(view{role: role, cookie: 1}), 3))
		r.m.Expire(t0.Add(time.Second)) // the missing call never comes
		require.Len(t, r.got, 2)
		assert.Equal(t, OutcomeOK, r.got[0].Outcome)
		assert.Equal(t, int64(3000), r.got[0].RespBodySize)
		assert.Equal(t, "/g", r.got[1].Path)
		assert.Equal(t, OutcomeOK, r.got[1].Outcome)
		st := r.m.Stats()
		assert.Zero(t, lostTotal(st))
		assert.Equal(t, uint64(1000), st.GapBytes)
	}
}

// TestGaps: calls lost by the capture; what they held is counted, and
// pairing never goes wrong after them.
func TestGaps(t *testing.T) {
	ex := func(path string) []msg {
		return []msg{cmsg("GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respOK)}
	}
	var msgs []msg
	for _, p := range []string{"/0", "/1", "/2", "/3", "/4"} {
		msgs = append(msgs, ex(p)...)
	}
	cv := conv{msgs: msgs, cISN: 77, sISN: 99}
	// Without OtherSeq a gap in the responses reports every exchange in
	// flight when it is found; with it, only those its bytes answered.
	cases := []struct {
		name           string
		lost           []int
		paths, noOther []string // exchanges reported OK
		cause          Cause    // of those reported lost
	}{
		{"whole exchange", []int{2, 3}, []string{"/0", "/2", "/3", "/4"}, []string{"/0", "/3", "/4"}, CauseGap},
		{"request", []int{4}, []string{"/0", "/1", "/3", "/4"}, []string{"/0", "/1", "/3", "/4"}, CauseNone},
		{"response", []int{5}, []string{"/0", "/1", "/3", "/4"}, []string{"/0", "/1", "/4"}, CauseGap},
		{"request and next response", []int{4, 7}, []string{"/0", "/1", "/4"}, []string{"/0", "/1"}, CauseGap},
	}
	for _, tc := range cases {
		for _, role := range []Role{RoleClient, RoleServer} {
			for _, noOther := range []bool{false, true} {
				name := fmt.Sprintf("%s/%v/noOther=%v", tc.name, role, noOther)
				r := newRecorder(t, Config{HoldWait: time.Millisecond})
				chs := drop(cv.chunks(view{role: role, cookie: 1, noOther: noOther}), tc.lost...)
				r.feed(chs)
				r.m.Expire(t0.Add(time.Second))
				r.m.Close(1, t0.Add(2*time.Second))
				var paths []string
				for _, e := range r.got {
					if e.Outcome == OutcomeOK {
						paths = append(paths, e.Path)
						assert.Equal(t, 200, e.StatusCode, name)
					} else {
						assert.Equal(t, OutcomeLost, e.Outcome, name)
						assert.Equal(t, tc.cause, e.Cause, name)
					}
				}
				want := tc.paths
				if noOther {
					want = tc.noOther
				}
				assert.Equal(t, want, paths, name)
				assert.NotZero(t, lostTotal(r.m.Stats()), name)
				checkInvariants(t, r.m)
			}
		}
	}
}

// TestMidConnection: a capture that starts inside a response body finds
// the next exchange.
func TestMidConnection(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
		smsg("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + repeat("x", 1000)),
		smsg(repeat("y", 1000)),
		cmsg("GET /b HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respOK),
	}, cISN: 1, sISN: 1}
	for _, role := range []Role{RoleClient, RoleServer} {
		r := newRecorder(t, Config{})
		r.feed(cv.chunks(view{role: role, cookie: 1})[2:])
		require.Len(t, r.got, 1)
		assert.Equal(t, "/b", r.got[0].Path)
		assert.Equal(t, role, r.got[0].Role)
		assert.Equal(t, OutcomeOK, r.got[0].Outcome)
	}
}

// TestResponseBeforeRequest: the call reading a response is reported
// before the call that wrote its request (two threads, two CPUs).
func TestResponseBeforeRequest(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n"), smsg("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"),
		cmsg("GET /b HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respOK),
	}, cISN: 1, sISN: 1}
	for _, noOther := range []bool{false, true} {
		chs := cv.chunks(view{role: RoleClient, cookie: 1, noOther: noOther})
		chs[0], chs[1] = chs[1], chs[0]
		chs[2], chs[3] = chs[3], chs[2]
		r := newRecorder(t, Config{})
		r.feed(chs)
		require.Len(t, r.got, 2, "noOther=%v", noOther)
		assert.Equal(t, "/a", r.got[0].Path)
		assert.Equal(t, "/b", r.got[1].Path)
		assert.Equal(t, int64(5), r.got[1].RespBodySize)
		assert.Zero(t, lostTotal(r.m.Stats()))
	}
}

// TestCallsOfOneDirectionSwapped: two calls of one direction reported out
// of order are put back by Seq; a peeked read seen twice counts once.
func TestCallsOfOneDirectionSwapped(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respErr),
		cmsg("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n"), cmsg("body"),
		smsg("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), smsg("hello"),
	}, cISN: 1, sISN: 1}
	chs := cv.chunks(view{role: RoleServer, cookie: 1})
	chs[2], chs[3] = chs[3], chs[2]
	peek := chs[5]
	chs = append(chs[:5], append([]Chunk{peek}, chs[5:]...)...)
	r := newRecorder(t, Config{})
	r.feed(chs)
	require.Len(t, r.got, 2)
	assert.Equal(t, int64(4), r.got[1].ReqBodySize)
	assert.Equal(t, int64(5), r.got[1].RespBodySize)
	assert.Zero(t, lostTotal(r.m.Stats()))
	assert.Zero(t, r.m.Stats().GapBytes)
}

func TestUpgradesAndTunnels(t *testing.T) {
	ws := conv{msgs: []msg{
		cmsg("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
		smsg("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello"),
		cmsg("\x81\x85abcdGET / HTTP/1.1"),
	}, cISN: 1, sISN: 1}
	got, st := run(t, ws, view{role: RoleClient, cookie: 1})
	require.Len(t, got, 1)
	assert.Equal(t, 101, got[0].StatusCode)
	assert.Equal(t, OutcomeOK, got[0].Outcome)
	assert.Equal(t, uint64(1), st.Upgraded)

	tunnel := conv{msgs: []msg{
		cmsg("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n"),
		smsg("HTTP/1.1 200 Connection established\r\n\r\n"),
		cmsg("\x16\x03\x01binary"), smsg("\x16\x03\x03more"),
	}, cISN: 1, sISN: 1}
	got, st = run(t, tunnel, view{role: RoleServer, cookie: 1})
	require.Len(t, got, 1)
	assert.Equal(t, "CONNECT", got[0].Method)
	assert.Equal(t, "db.internal", got[0].ServerAddress)
	assert.Equal(t, 5432, got[0].ServerPort)
	assert.Equal(t, "", got[0].Path)
	assert.Equal(t, uint64(1), st.Upgraded)
	assert.Zero(t, lostTotal(st))
}

func TestNotHTTP(t *testing.T) {
	for name, first := range map[string]string{
		"tls":      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"postgres": "\x00\x00\x00\x08\x04\xd2\x16\x2f",
		"smtp":     "EHLO client.example\r\n",
		"redis":    "*1\r\n$4\r\nPING\r\n",
	} {
		r := newRecorder(t, Config{})
		ok := true
		for i := 0; i < maxProbes+1 && ok; i++ {
			ok = r.m.Add(&Chunk{Conn: 1, Dir: Sent, Time: t0, Size: uint32(len(first)), Data: []byte(first)})
		}
		assert.False(t, ok, name)
		st := r.m.Stats()
		assert.Equal(t, uint64(1), st.NotHTTP, name)
		assert.Zero(t, lostTotal(st), name)
	}
}

func TestTimeoutsAndLateResponses(t *testing.T) {
	r := newRecorder(t, Config{RequestTimeout: time.Second})
	cv := conv{msgs: []msg{cmsg("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respOK),
		cmsg("GET /next HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respErr)}, cISN: 1, sISN: 1}
	chs := cv.chunks(view{role: RoleClient, cookie: 1})
	r.m.Add(&chs[0])
	r.m.Expire(t0.Add(2 * time.Second))
	require.Len(t, r.got, 1)
	assert.Equal(t, OutcomeTimeout, r.got[0].Outcome)
	for i := 1; i < 4; i++ {
		chs[i].Time = t0.Add(3 * time.Second)
		r.m.Add(&chs[i])
	}
	require.Len(t, r.got, 2)
	assert.Equal(t, "/next", r.got[1].Path)
	assert.Equal(t, 503, r.got[1].StatusCode, "the late response was not taken for /next's")
	st := r.m.Stats()
	assert.Equal(t, uint64(1), st.LateResponses)
	assert.Equal(t, uint64(1), st.Lost[CauseTimeout])
	checkInvariants(t, r.m)
}

func TestBounds(t *testing.T) {
	t.Run("MaxConns", func(t *testing.T) {
		r := newRecorder(t, Config{MaxConns: 10})
		req := []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		for i := range 25 {
			r.m.Add(&Chunk{Conn: uint64(i), Dir: Sent, Time: t0, Size: uint32(len(req)), Data: req})
		}
		assert.Equal(t, 10, r.m.Conns())
		assert.Len(t, r.got, 15)
		for _, e := range r.got {
			assert.Equal(t, CauseEvicted, e.Cause)
		}
		assert.Equal(t, uint64(15), r.m.Stats().Lost[CauseEvicted])
		checkInvariants(t, r.m)
	})
	t.Run("MaxPending", func(t *testing.T) {
		r := newRecorder(t, Config{MaxPending: 100})
		req := []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		for i := range 150 {
			r.m.Add(&Chunk{Conn: uint64(i % 3), Dir: Sent, Time: t0, Size: uint32(len(req)), Data: req})
		}
		assert.Equal(t, 100, r.m.InFlight())
		assert.Len(t, r.got, 50)
		checkInvariants(t, r.m)
	})
	t.Run("MaxInFlight", func(t *testing.T) {
		r := newRecorder(t, Config{MaxInFlight: 8})
		req := []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		ok := true
		for i := 0; i < 9 && ok; i++ {
			ok = r.m.Add(&Chunk{Conn: 1, Dir: Sent, Time: t0, Size: uint32(len(req)), Data: req})
		}
		assert.False(t, ok)
		assert.Len(t, r.got, 8)
		assert.Zero(t, r.m.InFlight())
		checkInvariants(t, r.m)
	})
	t.Run("MaxHead", func(t *testing.T) {
		cv := conv{msgs: []msg{
			cmsg("GET / HTTP/1.1\r\nHost: h\r\n"), cmsg("X-Big: " + repeat("x", 2000) + "\r\n\r\n"), smsg(respOK),
			cmsg("GET /ok HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respOK),
		}, cISN: 1, sISN: 1}
		r := newRecorder(t, Config{MaxHead: 1024, HoldWait: time.Millisecond})
		r.feed(cv.chunks(view{role: RoleServer, cookie: 1}))
		r.m.Expire(t0.Add(time.Second))
		require.Len(t, r.got, 1)
		assert.Equal(t, "/ok", r.got[0].Path)
		st := r.m.Stats()
		assert.Equal(t, uint64(1), st.Lost[CauseTooLarge])
		assert.Equal(t, uint64(1), st.Lost[CauseUnmatched])
	})
}

// TestHeadPastTheCapture: a request head longer than the captured prefix
// is reported with what was captured; framing resumes at the next request.
func TestHeadPastTheCapture(t *testing.T) {
	cv := conv{msgs: []msg{
		cmsg("GET /big-cookie HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\nCookie: " + repeat("c", 5000) + "\r\n\r\n"),
		smsg(respOK),
		cmsg("GET /next HTTP/1.1\r\nHost: h\r\n\r\n"), smsg(respOK),
	}, cISN: 1, sISN: 1}
	for _, role := range []Role{RoleClient, RoleServer} {
		r := newRecorder(t, Config{})
		r.feed(cv.chunks(view{role: role, cookie: 1, limit: 512}))
		require.Len(t, r.got, 2)
		assert.Equal(t, "/big-cookie", r.got[0].Path)
		assert.Equal(t, "ua", r.got[0].UserAgent)
		assert.Equal(t, 200, r.got[0].StatusCode)
		assert.Equal(t, int64(-1), r.got[0].ReqBodySize)
		assert.Equal(t, "/next", r.got[1].Path)
		assert.Equal(t, uint64(1), r.m.Stats().Lost[CauseUncaptured])
	}
}

func TestProcessExit(t *testing.T) {
	r := newRecorder(t, Config{})
	req := []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	r.m.Add(&Chunk{Conn: 1, PID: 42, Dir: Sent, Time: t0, Size: uint32(len(req)), Data: req})
	r.m.Add(&Chunk{Conn: 2, PID: 42, Dir: Sent, Time: t0, Size: uint32(len(req)), Data: req})
	r.m.Add(&Chunk{Conn: 3, PID: 43, Dir: Sent, Time: t0, Size: uint32(len(req)), Data: req})
	r.m.ProcessExit(42, t0.Add(time.Second))
	assert.Len(t, r.got, 2)
	assert.Equal(t, 1, r.m.Conns())
	for _, e := range r.got {
		assert.Equal(t, OutcomeClosed, e.Outcome)
	}
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		target, host       string
		path, scheme, addr string
		port               int
	}{
		{"/a/b?c=d#e", "example.com", "/a/b", "http", "example.com", 0},
		{"http://user:pw@api.example:81/p?q", "other", "/p", "http", "api.example", 81},
		{"HTTP://api.example", "", "", "http", "api.example", 0},
		{"*", "h:8080", "*", "http", "h", 8080},
		{"/", "[2001:db8::1]:8443", "/", "http", "2001:db8::1", 8443},
		{"/", "[::1]", "/", "http", "::1", 0},
		{"/", "h:99999", "/", "http", "h", 0},
	} {
		cv := conv{msgs: []msg{cmsg("OPTIONS " + tc.target + " HTTP/1.1\r\nHost: " + tc.host + "\r\n\r\n"), smsg(respErr)}, cISN: 1, sISN: 1}
		got, _ := run(t, cv, view{role: RoleServer, cookie: 1})
		require.Len(t, got, 1, tc.target)
		assert.Equal(t, tc.path, got[0].Path, tc.target)
		assert.Equal(t, tc.scheme, got[0].Scheme, tc.target)
		assert.Equal(t, tc.addr, got[0].ServerAddress, tc.target)
		assert.Equal(t, tc.port, got[0].ServerPort, tc.target)
	}
}

func TestTraceparent(t *testing.T) {
	for v, ok := range map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      true,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more": true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more": false,
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      false,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":      false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":      false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":      false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7":         false,
	} {
		var ex Exchange
		parseTraceparent(v, &ex)
		assert.Equal(t, ok, ex.HasTraceparent, v)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	_, err := New(Config{MaxConns: -1, HoldWait: -time.Second}, func(*Exchange) {})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MaxConns")
	assert.Contains(t, err.Error(), "HoldWait")
	_, err = New(Config{}, nil)
	assert.ErrorContains(t, err, "emit")
}

// TestManyConnections: thousands of connections in flight at once, their
// calls interleaved: each keeps its exchanges apart; beyond MaxConns the
// least recently active are forgotten, counted.
func TestManyConnections(t *testing.T) {
	const n = 5000
	convs := make([][]Chunk, n)
	for i := range convs {
		cv := conv{msgs: []msg{
			cmsg(fmt.Sprintf("GET /c%d/a HTTP/1.1\r\nHost: h%d\r\n\r\nGET /c%d/b HTTP/1.1\r\nHost: h%d\r\n\r\n", i, i, i, i)),
			smsg(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(fmt.Sprint(i)), fmt.Sprint(i))),
			smsg("HTTP/1.1 204 No Content\r\n\r\n"),
		}, cISN: uint32(i * 7919), sISN: uint32(i * 104729)}
		convs[i] = cv.chunks(view{role: RoleServer, cookie: uint64(i + 1)})
	}
	for _, maxConns := range []int{0, 1000} {
		r := newRecorder(t, Config{MaxConns: maxConns})
		for i := range convs {
			r.m.Add(&convs[i][0])
		}
		from := 0 // answer all, or the last maxConns
		if maxConns > 0 {
			from = n - maxConns
		}
		for step := 1; step < 3; step++ {
			for i := from; i < n; i++ {
				r.m.Add(&convs[i][step])
			}
		}
		if maxConns == 0 {
			require.Len(t, r.got, 2*n)
			for _, e := range r.got {
				var i int
				_, err := fmt.Sscanf(e.Path, "/c%d/", &i)
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprintf("h%d", i), e.ServerAddress)
				if strings.HasSuffix(e.Path, "/a") {
					assert.Equal(t, 200, e.StatusCode)
					assert.Equal(t, int64(len(fmt.Sprint(i))), e.RespBodySize)
				} else {
					assert.Equal(t, 204, e.StatusCode)
				}
			}
			assert.Zero(t, lostTotal(r.m.Stats()))
			continue
		}
		assert.Equal(t, maxConns, r.m.Conns())
		st := r.m.Stats()
		assert.Equal(t, uint64(2*(n-maxConns)), st.Outcomes[OutcomeLost], "each forgotten connection had two requests in flight")
		assert.Equal(t, uint64(n-maxConns), st.Lost[CauseEvicted])
		assert.Equal(t, uint64(2*maxConns), st.Outcomes[OutcomeOK])
		checkInvariants(t, r.m)
	}
}

// TestSecretsNeverOut: planted credentials, cookies and query strings
// appear in no exchange and no counter, HTTP/1 and HTTP/2, from both ends.
func TestSecretsNeverOut(t *testing.T) {
	secrets := []string{"planted-secret", "planted-cookie", "planted-setcookie", "planted-proxy", "planted-user", "planted-query", "s3cr3t"}
	c, s := newH2end(true), newH2end(false)
	h2 := conv{cISN: 1, sISN: 1, msgs: []msg{
		c.preface().settings().msg(), s.settings().msg(),
		c.headers(1, true, reqFields("GET", "/x?token=planted-query", "authorization", "Basic planted-secret",
			"cookie", "a=planted-cookie", "proxy-authorization", "planted-proxy")...).msg(),
		s.headers(1, true, ":status", "200", "set-cookie", "planted-setcookie").msg(),
	}}
	h1 := conv{cISN: 1, sISN: 1, msgs: []msg{
		cmsg(reqGet),
		smsg(respOK),
		cmsg("GET http://planted-user:planted-secret@proxy.example/p?planted-query HTTP/1.1\r\nHost: x\r\nProxy-Authorization: planted-proxy\r\n\r\n"),
		smsg(respErr),
	}}
	for _, cv := range []conv{h1, h2, mixed} {
		for _, role := range []Role{RoleClient, RoleServer} {
			for _, limit := range []int{0, 60} {
				r := newRecorder(t, Config{})
				r.feed(cv.chunks(view{role: role, cookie: 1, limit: limit}))
				r.m.Close(1, t0.Add(time.Second))
				out := fmt.Sprintf("%#v %#v", r.got, r.m.Stats())
				for _, sec := range secrets {
					assert.NotContains(t, out, sec)
				}
			}
		}
	}
}

func TestIdleConnectionsForgotten(t *testing.T) {
	r := newRecorder(t, Config{IdleTimeout: time.Minute, RequestTimeout: time.Hour})
	req := []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	r.m.Add(&Chunk{Conn: 1, Dir: Sent, Time: t0, Size: uint32(len(req)), Data: req})
	r.m.Add(&Chunk{Conn: 2, Dir: Sent, Time: t0.Add(50 * time.Second), Size: uint32(len(req)), Data: req})
	r.m.Expire(t0.Add(90 * time.Second))
	require.Len(t, r.got, 1)
	assert.Equal(t, OutcomeTimeout, r.got[0].Outcome)
	assert.Equal(t, uint64(1), r.got[0].Conn)
	assert.Equal(t, 1, r.m.Conns())
	assert.Equal(t, uint64(1), r.m.Stats().Lost[CauseTimeout])
	checkInvariants(t, r.m)
}
