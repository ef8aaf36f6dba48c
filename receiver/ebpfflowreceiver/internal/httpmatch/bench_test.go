package httpmatch

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// One op of these benchmarks is one exchange through the whole engine:
// its calls ordered, parsed, paired and emitted. Figures are per core
// (the engine is single-threaded).

// BenchmarkHTTP1KeepAlive: small requests on 16 keep-alive connections
// seen by their server (curl-like request heads, nginx-like responses, 64
// different paths).
func BenchmarkHTTP1KeepAlive(b *testing.B) {
	const conns = 16
	var reqs, resps [][]byte
	for i := range 64 {
		reqs = append(reqs, fmt.Appendf(nil, "GET /api/v1/items/%d?page=2 HTTP/1.1\r\nHost: shop.default.svc:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n", i))
		resps = append(resps, []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 22 Nov 2026 10:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\r\n{\"id\":1,\"ok\":true}"))
	}
	var n int
	m, err := New(Config{}, func(*Exchange) { n++ })
	if err != nil {
		b.Fatal(err)
	}
	var cseq, sseq [conns]uint32
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := i % conns
		rq, rs := reqs[i%len(reqs)], resps[i%len(resps)]
		now = now.Add(time.Microsecond)
		ch := Chunk{Conn: uint64(c + 1), PID: 1, Dir: Received, Time: now, Seq: cseq[c], HasSeq: true,
			OtherSeq: sseq[c], HasOtherSeq: true, Size: uint32(len(rq)), Data: rq}
		m.Add(&ch)
		cseq[c] += uint32(len(rq))
		ch = Chunk{Conn: uint64(c + 1), PID: 1, Dir: Sent, Time: now, Seq: sseq[c], HasSeq: true,
			OtherSeq: cseq[c], HasOtherSeq: true, Size: uint32(len(rs)), Data: rs}
		m.Add(&ch)
		sseq[c] += uint32(len(rs))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
	if n != b.N {
		b.Fatalf("%d exchanges of %d", n, b.N)
	}
}

// BenchmarkGRPCUnary: gRPC unary calls over h2c seen by the client, a
// fresh connection every 1000 calls (its preface and first, literal,
// header blocks included): request HEADERS and DATA in one write, response
// HEADERS, DATA and trailers in one read, as grpc-go writes them.
func BenchmarkGRPCUnary(b *testing.B) {
	const perConn = 1000
	c, s := newH2end(true), newH2end(false)
	open := []msg{c.preface().settings().msg(), s.settings().msg()}
	var calls [][2]msg
	for i := range perConn {
		sid := uint32(2*i + 1)
		calls = append(calls, [2]msg{
			c.headers(sid, false, reqFields("POST", "/helloworld.Greeter/SayHello",
				"content-type", "application/grpc", "user-agent", "grpc-go/1.84.0", "te", "trailers",
				"grpc-timeout", fmt.Sprintf("%dm", 1000-i%7))...).data(sid, true, "\x00\x00\x00\x00\x07\x0a\x05world").msg(),
			s.headers(sid, false, ":status", "200", "content-type", "application/grpc").
				data(sid, false, "\x00\x00\x00\x00\x0d\x0a\x0bHello world").
				headers(sid, true, "grpc-status", "0", "grpc-message", "").msg(),
		})
	}
	var n int
	m, err := New(Config{}, func(e *Exchange) {
		if e.GRPCStatus == 0 {
			n++
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	var cseq, sseq uint32
	now := t0
	add := func(conn uint64, mg msg) {
		ch := Chunk{Conn: conn, PID: 1, Dir: Received, Time: now, Seq: sseq, HasSeq: true, OtherSeq: cseq, HasOtherSeq: true,
			Size: uint32(len(mg.b)), Data: mg.b}
		if mg.client {
			ch.Dir, ch.Seq, ch.OtherSeq = Sent, cseq, sseq
			cseq += ch.Size
		} else {
			sseq += ch.Size
		}
		m.Add(&ch)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		conn := uint64(i/perConn + 1)
		now = now.Add(time.Microsecond)
		if i%perConn == 0 {
			if conn > 1 {
				m.Close(conn-1, now)
			}
			for _, mg := range open {
				add(conn, mg)
			}
		}
		call := calls[i%perConn]
		add(conn, call[0])
		add(conn, call[1])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
	if n != b.N {
		b.Fatalf("%d exchanges of %d: %+v", n, b.N, m.Stats())
	}
	_ = http2.ErrCodeNo
}
