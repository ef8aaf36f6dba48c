package httpmatch

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2end builds the frames one end writes, with its own HPACK encoder.
type h2end struct {
	client bool
	out    bytes.Buffer
	fr     *http2.Framer
	enc    *hpack.Encoder
	hb     bytes.Buffer
}

func newH2end(client bool) *h2end {
	e := &h2end{client: client}
	e.fr = http2.NewFramer(&e.out, nil)
	e.fr.AllowIllegalWrites = true
	e.enc = hpack.NewEncoder(&e.hb)
	return e
}

// block encodes header fields given as name, value pairs.
func (e *h2end) block(kv ...string) []byte {
	e.hb.Reset()
	for i := 0; i < len(kv); i += 2 {
		f := hpack.HeaderField{Name: kv[i], Value: kv[i+1]}
		if f.Name == "authorization" || f.Name == "cookie" {
			f.Sensitive = true
		}
		_ = e.enc.WriteField(f)
	}
	return append([]byte(nil), e.hb.Bytes()...)
}

func (e *h2end) headers(sid uint32, end bool, kv ...string) *h2end {
	_ = e.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: e.block(kv...), EndStream: end, EndHeaders: true})
	return e
}

func (e *h2end) data(sid uint32, end bool, b string) *h2end {
	_ = e.fr.WriteData(sid, end, []byte(b))
	return e
}

func (e *h2end) settings(s ...http2.Setting) *h2end {
	_ = e.fr.WriteSettings(s...)
	return e
}

// msg takes what was written as one call.
func (e *h2end) msg() msg {
	b := append([]byte(nil), e.out.Bytes()...)
	e.out.Reset()
	return msg{client: e.client, b: b}
}

func (e *h2end) preface() *h2end {
	e.out.WriteString(clientPreface)
	return e
}

func reqFields(method, path string, extra ...string) []string {
	return append([]string{":method", method, ":scheme", "http", ":authority", "api.internal:8080", ":path", path}, extra...)
}

func TestHTTP2PriorKnowledge(t *testing.T) {
	c, s := newH2end(true), newH2end(false)
	cv := conv{cISN: 100, sISN: 200, msgs: []msg{
		c.preface().settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536}).msg(),
		s.settings().msg(),
		c.headers(1, true, reqFields("GET", "/v1/things?secret=planted",
			"user-agent", "test/1", "authorization", "Bearer planted-secret",
			"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")...).msg(),
		s.headers(1, false, ":status", "200", "content-type", "text/plain", "set-cookie", "planted-setcookie").data(1, true, "hello").msg(),
		// The same request again: fields now come from the dynamic tables.
		c.headers(3, true, reqFields("GET", "/v1/things", "user-agent", "test/1")...).msg(),
		s.headers(3, true, ":status", "404").msg(),
	}}
	for _, role := range []Role{RoleClient, RoleServer} {
		got, st := run(t, cv, view{role: role, cookie: 9})
		require.Len(t, got, 2, "%+v", st)
		e := got[0]
		assert.Equal(t, role, e.Role)
		assert.Equal(t, Proto2, e.Proto)
		assert.Equal(t, uint32(1), e.StreamID)
		assert.Equal(t, "GET", e.Method)
		assert.Equal(t, "/v1/things", e.Path)
		assert.Equal(t, "http", e.Scheme)
		assert.Equal(t, "api.internal", e.ServerAddress)
		assert.Equal(t, 8080, e.ServerPort)
		assert.Equal(t, "test/1", e.UserAgent)
		assert.Equal(t, 200, e.StatusCode)
		assert.Equal(t, int64(5), e.RespBodySize)
		assert.Equal(t, int64(0), e.ReqBodySize)
		assert.True(t, e.HasTraceparent)
		assert.Equal(t, uint32(100+len(clientPreface)+9+6), e.Seq, "the HEADERS frame's first byte")
		assert.Equal(t, t0.Add(30*time.Microsecond), e.Start)
		assert.Equal(t, t0.Add(40*time.Microsecond), e.End)
		assert.Equal(t, OutcomeOK, e.Outcome)
		assert.Equal(t, uint32(3), got[1].StreamID)
		assert.Equal(t, 404, got[1].StatusCode)
		assert.Equal(t, "/v1/things", got[1].Path)
		assert.Zero(t, lostTotal(st))
	}
}

// grpcConv is gRPC over h2c: a unary call, a server stream of three
// messages, an error (trailers-only), with CONTINUATION, padding and
// priority, interleaved streams.
func grpcConv() conv {
	c, s := newH2end(true), newH2end(false)
	greq := func(sid uint32, method string) *h2end {
		b := c.block(reqFields("POST", method, "content-type", "application/grpc+proto", "te", "trailers", "user-agent", "grpc-go/1.84.0", "grpc-timeout", "99m")...)
		// HEADERS with padding and priority, then two CONTINUATIONs.
		_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: b[:5], PadLength: 7,
			Priority: http2.PriorityParam{StreamDep: 0, Weight: 15}})
		_ = c.fr.WriteContinuation(sid, false, b[5:9])
		_ = c.fr.WriteContinuation(sid, true, b[9:])
		_ = c.fr.WriteDataPadded(sid, true, []byte("\x00\x00\x00\x00\x03abc"), []byte{0, 0, 0})
		return c
	}
	grpcOK := []string{":status", "200", "content-type", "application/grpc+proto"}
	return conv{cISN: 7, sISN: 70000, msgs: []msg{
		c.preface().settings().msg(), s.settings().msg(),
		func() msg { _ = c.fr.WriteSettingsAck(); return c.msg() }(),
		greq(1, "/helloworld.Greeter/SayHello").msg(),
		greq(3, "/helloworld.Greeter/StreamHellos").msg(),
		greq(5, "/helloworld.Greeter/Fail").msg(),
		s.headers(3, false, grpcOK...).data(3, false, "\x00\x00\x00\x00\x01a").msg(),
		s.headers(1, false, grpcOK...).data(1, false, "\x00\x00\x00\x00\x02hi").msg(),
		s.headers(5, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "5", "grpc-message", "not found").msg(),
		s.data(3, false, "\x00\x00\x00\x00\x01b").data(3, false, "\x00\x00\x00\x00\x01c").msg(),
		s.headers(1, true, "grpc-status", "0").msg(),
		s.headers(3, true, "grpc-status", "0", "grpc-message", "").msg(),
	}}
}

func TestHTTP2GRPC(t *testing.T) {
	cv := grpcConv()
	for _, role := range []Role{RoleClient, RoleServer} {
		got, st := run(t, cv, view{role: role, cookie: 9})
		require.Len(t, got, 3, "%+v", st)
		byID := map[uint32]Exchange{}
		for _, e := range got {
			byID[e.StreamID] = e
			assert.True(t, e.GRPC)
			assert.Equal(t, "helloworld.Greeter", e.RPCService)
			assert.Equal(t, "POST", e.Method)
			assert.Equal(t, "grpc-go/1.84.0", e.UserAgent)
			assert.Equal(t, int64(8), e.ReqBodySize, "padding is not body")
			assert.Equal(t, 200, e.StatusCode)
		}
		assert.Equal(t, "SayHello", byID[1].RPCMethod)
		assert.Equal(t, 0, byID[1].GRPCStatus)
		assert.Equal(t, int64(7), byID[1].RespBodySize)
		assert.Equal(t, "StreamHellos", byID[3].RPCMethod)
		assert.Equal(t, 0, byID[3].GRPCStatus)
		assert.Equal(t, int64(18), byID[3].RespBodySize)
		assert.Equal(t, "Fail", byID[5].RPCMethod)
		assert.Equal(t, 5, byID[5].GRPCStatus)
		assert.Zero(t, lostTotal(st))
		// Emitted in the order the responses ended.
		assert.Equal(t, []uint32{5, 1, 3}, []uint32{got[0].StreamID, got[1].StreamID, got[2].StreamID})
	}
}

// TestHTTP2SplitAtEveryByte: any call split anywhere gives the same
// exchanges.
func TestHTTP2SplitAtEveryByte(t *testing.T) {
	cv := grpcConv()
	for _, role := range []Role{RoleClient, RoleServer} {
		v := view{role: role, cookie: 3}
		want, _ := run(t, cv, v)
		require.Len(t, want, 3)
		base := cv.chunks(v)
		for i := range base {
			for k := 1; k < len(base[i].Data); k++ {
				r := newRecorder(t, Config{})
				r.feed(splitChunk(base, i, k))
				r.m.Close(3, t0.Add(time.Second))
				require.Equal(t, want, r.got, "%v: call %d split at %d", role, i, k)
				require.Zero(t, lostTotal(r.m.Stats()))
			}
		}
	}
}

func TestHTTP2ResetAndGoAway(t *testing.T) {
	c, s := newH2end(true), newH2end(false)
	c.preface().settings()
	cv := conv{cISN: 1, sISN: 1, msgs: []msg{
		c.headers(1, true, reqFields("GET", "/a")...).headers(3, true, reqFields("GET", "/b")...).headers(5, true, reqFields("GET", "/c")...).msg(),
		s.settings().headers(1, false, ":status", "200").msg(),
		func() msg { _ = c.fr.WriteRSTStream(1, http2.ErrCodeCancel); return c.msg() }(),
		func() msg { _ = s.fr.WriteGoAway(3, http2.ErrCodeNo, nil); return s.msg() }(),
		s.headers(3, true, ":status", "204").msg(),
	}}
	got, st := run(t, cv, view{role: RoleClient, cookie: 1})
	require.Len(t, got, 3, "%+v", st)
	assert.Equal(t, OutcomeReset, got[0].Outcome)
	assert.Equal(t, uint32(1), got[0].StreamID)
	assert.Equal(t, 200, got[0].StatusCode)
	assert.Equal(t, uint32(http2.ErrCodeCancel), got[0].H2ErrorCode)
	assert.Equal(t, OutcomeReset, got[1].Outcome, "refused by GOAWAY")
	assert.Equal(t, uint32(5), got[1].StreamID)
	assert.Equal(t, OutcomeOK, got[2].Outcome)
	assert.Equal(t, 204, got[2].StatusCode)
	assert.Zero(t, lostTotal(st))
}

// TestHTTP2TableSizes: SETTINGS_HEADER_TABLE_SIZE changes and the size
// updates the encoder signals in its blocks, down to no table at all and
// up past the default.
func TestHTTP2TableSizes(t *testing.T) {
	for _, size := range []uint32{0, 256, 65536} {
		c, s := newH2end(true), newH2end(false)
		s.enc.SetMaxDynamicTableSizeLimit(size)
		s.enc.SetMaxDynamicTableSize(size)
		msgs := []msg{
			c.preface().settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: size}).msg(),
			s.settings().msg(),
		}
		for i := uint32(0); i < 20; i++ {
			sid := 2*i + 1
			msgs = append(msgs,
				c.headers(sid, true, reqFields("GET", "/p")...).msg(),
				s.headers(sid, true, ":status", "200", "x-req", repeat("v", int(i)*10), "server", "s").msg())
		}
		got, st := run(t, conv{cISN: 1, sISN: 1, msgs: msgs}, view{role: RoleClient, cookie: 1})
		require.Len(t, got, 20, "size %d: %+v", size, st)
		for _, e := range got {
			assert.Equal(t, 200, e.StatusCode)
		}
		assert.Zero(t, lostTotal(st))
	}
}

// TestHTTP2LostHeaders: a lost call that held a HEADERS frame stops
// decoding the connection (counted) rather than decode later blocks
// against a wrong table; a gap inside DATA does not.
func TestHTTP2LostHeaders(t *testing.T) {
	c, s := newH2end(true), newH2end(false)
	msgs := []msg{c.preface().settings().msg(), s.settings().msg()}
	for i := uint32(0); i < 6; i++ {
		sid := 2*i + 1
		msgs = append(msgs,
			c.headers(sid, true, reqFields("GET", "/p", "x-n", repeat("n", int(i)))...).msg(),
			s.headers(sid, false, ":status", "200").msg(),
			s.data(sid, false, repeat("d", 100)).msg(),
			s.data(sid, true, repeat("e", 100)).msg())
	}
	cv := conv{cISN: 1, sISN: 1, msgs: msgs}
	t.Run("gap in DATA", func(t *testing.T) {
		// Stream 1's first DATA frame over three calls; the middle one lost.
		chs := cv.chunks(view{role: RoleClient, cookie: 1})
		d := chs[4]
		a, b, e := d, d, d
		a.Data, a.Size = d.Data[:20], 20
		b.Data, b.Size, b.Seq = d.Data[20:60], 40, d.Seq+20
		e.Data, e.Size, e.Seq = d.Data[60:], d.Size-60, d.Seq+60
		chs = append(chs[:4], append([]Chunk{a, b, e}, chs[5:]...)...)
		r := newRecorder(t, Config{HoldWait: time.Millisecond})
		r.feed(drop(chs, 5))
		r.m.Expire(t0.Add(time.Second))
		require.Len(t, r.got, 6)
		assert.Equal(t, int64(200), r.got[0].RespBodySize)
		assert.Zero(t, lostTotal(r.m.Stats()))
		assert.Equal(t, uint64(40), r.m.Stats().GapBytes)
	})
	t.Run("gap with HEADERS", func(t *testing.T) {
		r := newRecorder(t, Config{HoldWait: time.Millisecond})
		r.feed(drop(cv.chunks(view{role: RoleClient, cookie: 1}), 7)) // stream 3's response HEADERS
		r.m.Expire(t0.Add(time.Second))
		r.m.Close(1, t0.Add(2*time.Second))
		require.Len(t, r.got, 6)
		assert.Equal(t, OutcomeOK, r.got[0].Outcome)
		for _, e := range r.got[1:] {
			assert.Equal(t, OutcomeLost, e.Outcome, "never decoded against a table missing a block")
			assert.Equal(t, CauseGap, e.Cause)
			assert.Equal(t, 0, e.StatusCode)
		}
		assert.Equal(t, uint64(1), r.m.Stats().Lost[CauseGap])
	})
	t.Run("HEADERS past the capture", func(t *testing.T) {
		chs := cv.chunks(view{role: RoleServer, cookie: 1})
		chs[6].Data = chs[6].Data[:12] // stream 3's request HEADERS: its block is cut
		r := newRecorder(t, Config{})
		ok := true
		for _, ch := range chs {
			ok = r.m.Add(&ch)
		}
		assert.False(t, ok, "no longer decoded")
		assert.Equal(t, uint64(1), r.m.Stats().Lost[CauseHPACKDesync])
		require.Len(t, r.got, 1, "stream 3's request was never seen whole: counted, not emitted")
		assert.Equal(t, OutcomeOK, r.got[0].Outcome)
	})
}

func TestH2CUpgrade(t *testing.T) {
	c, s := newH2end(true), newH2end(false)
	up := cmsg("GET /first HTTP/1.1\r\nHost: h2.local:8080\r\nUser-Agent: curl/7.88.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
	sw := smsg("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	sw.b = append(sw.b, s.settings().headers(1, false, ":status", "200").data(1, true, "first body").msg().b...)
	cv := conv{cISN: 1, sISN: 1, msgs: []msg{
		up, sw,
		c.preface().settings().msg(),
		c.headers(3, true, reqFields("GET", "/second")...).msg(),
		s.headers(3, true, ":status", "200").msg(),
	}}
	for _, role := range []Role{RoleClient, RoleServer} {
		got, st := run(t, cv, view{role: role, cookie: 1})
		require.Len(t, got, 2, "%+v", st)
		assert.Equal(t, "/first", got[0].Path)
		assert.Equal(t, uint32(1), got[0].StreamID)
		assert.Equal(t, Proto2, got[0].Proto)
		assert.Equal(t, "h2.local", got[0].ServerAddress)
		assert.Equal(t, 200, got[0].StatusCode)
		assert.Equal(t, int64(10), got[0].RespBodySize)
		assert.Equal(t, uint32(1), got[0].Seq)
		assert.Equal(t, "/second", got[1].Path)
		assert.Equal(t, Proto2, got[1].Proto)
		assert.Zero(t, lostTotal(st))
	}
}

// TestHTTP2ServerPrefaceFirst: the server's SETTINGS is reported before
// the client's preface.
func TestHTTP2ServerPrefaceFirst(t *testing.T) {
	c, s := newH2end(true), newH2end(false)
	cv := conv{cISN: 1, sISN: 1, msgs: []msg{
		s.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}).msg(),
		c.preface().settings().headers(1, true, reqFields("GET", "/x")...).msg(),
		s.headers(1, true, ":status", "200").msg(),
	}}
	got, st := run(t, cv, view{role: RoleServer, cookie: 1})
	require.Len(t, got, 1, "%+v", st)
	assert.Equal(t, RoleServer, got[0].Role)
	assert.Equal(t, "/x", got[0].Path)
}

// TestHTTP2Midstream: a connection first seen after its preface cannot
// be decoded: counted.
func TestHTTP2Midstream(t *testing.T) {
	c := newH2end(true)
	m := c.headers(7, true, reqFields("GET", "/x")...).msg()
	r := newRecorder(t, Config{})
	ok := r.m.Add(&Chunk{Conn: 1, Dir: Sent, Time: t0, Size: uint32(len(m.b)), Data: m.b})
	assert.False(t, ok)
	assert.Equal(t, uint64(1), r.m.Stats().Lost[CauseMidstream])
}

func TestHTTP2InterimAndResponseFirst(t *testing.T) {
	c, s := newH2end(true), newH2end(false)
	cv := conv{cISN: 1, sISN: 1, msgs: []msg{
		c.preface().settings().msg(), s.settings().msg(),
		c.headers(1, false, reqFields("PUT", "/up", "expect", "100-continue")...).msg(),
		s.headers(1, false, ":status", "100").msg(),
		c.data(1, true, "0123456789").msg(),
		s.headers(1, true, ":status", "201").msg(),
	}}
	got, _ := run(t, cv, view{role: RoleClient, cookie: 1})
	require.Len(t, got, 1)
	assert.Equal(t, 201, got[0].StatusCode)
	assert.Equal(t, int64(10), got[0].ReqBodySize)

	// The response's call reported before the request's, no OtherSeq.
	chs := cv.chunks(view{role: RoleClient, cookie: 1, noOther: true})
	chs[2], chs[3] = chs[3], chs[2]
	r := newRecorder(t, Config{})
	r.feed(chs)
	require.Len(t, r.got, 1)
	assert.Equal(t, 201, r.got[0].StatusCode)
	assert.Equal(t, "/up", r.got[0].Path)
}
