package httpmatch

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"
)

// The fuzz input is a script of calls on one connection, seen by its
// client: per call a flags byte (bit 0: received, bit 1: its Seq is the
// next four bytes' signed count past where its direction stands (a gap, or
// calls reported out of order), bit 2: the call moved the next two bytes'
// count more than captured, bit 3: no Seq, bit 4: an end of stream), a
// two-byte length and the captured bytes. Seeds are the connections of the real
// captures and the conversations of the other tests.

func encodeChunks(chs []Chunk) []byte {
	var b []byte
	var next [2]uint32
	var seen [2]bool
	for _, c := range chs {
		var flags byte
		if c.Dir == Received {
			flags |= 1
		}
		var delta uint32
		if seen[c.Dir-1] && c.HasSeq && c.Seq != next[c.Dir-1] {
			delta = c.Seq - next[c.Dir-1]
			flags |= 2
		}
		extra := c.Size - uint32(len(c.Data))
		if extra > 0 {
			flags |= 4
		}
		if c.Size == 0 {
			flags |= 16
		}
		b = append(b, flags)
		if delta != 0 {
			b = binary.BigEndian.AppendUint32(b, delta)
		}
		if extra > 0 {
			b = binary.BigEndian.AppendUint16(b, uint16(min(extra, 65535)))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Data)))
		b = append(b, c.Data...)
		next[c.Dir-1], seen[c.Dir-1] = c.Seq+c.Size, true
	}
	return b
}

func decodeChunks(b []byte) []Chunk {
	var chs []Chunk
	next := [2]uint32{1000, 50000}
	for i := 0; len(b) >= 3; i++ {
		flags := b[0]
		b = b[1:]
		d := Sent
		if flags&1 != 0 {
			d = Received
		}
		if flags&2 != 0 && len(b) >= 4 {
			next[d-1] += binary.BigEndian.Uint32(b)
			b = b[4:]
		}
		var extra uint32
		if flags&4 != 0 && len(b) >= 2 {
			extra = uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) < 2 {
			break
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		n = min(n, len(b))
		data := b[:n]
		b = b[n:]
		c := Chunk{Conn: 1, PID: 7, Dir: d, Time: t0.Add(time.Duration(i) * time.Microsecond),
			Seq: next[d-1], HasSeq: flags&8 == 0, OtherSeq: next[d.other()-1], HasOtherSeq: flags&8 == 0,
			Size: uint32(n) + extra, Data: data}
		if flags&16 != 0 {
			c.Dir, c.Size, c.Data = Received, 0, nil
		}
		next[c.Dir-1] += c.Size
		chs = append(chs, c)
	}
	return chs
}

// fuzzRun feeds the script and checks what must hold of any input.
func fuzzRun(t *testing.T, chs []Chunk) {
	cfg := Config{MaxInFlight: 8, MaxPending: 16, MaxHead: 512, MaxHeaderTable: 4096, HoldWait: time.Millisecond}
	var emitted int
	m, err := New(cfg, func(e *Exchange) {
		emitted++
		if e.Outcome >= numOutcomes || (e.Cause != CauseNone) != (e.Outcome == OutcomeLost) || e.End.Before(e.Start) {
			t.Fatalf("bad exchange %+v", e)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range chs {
		m.Add(&chs[i])
		if m.npending > cfg.MaxPending || m.live > m.npending {
			t.Fatalf("%d in flight over MaxPending %d", m.npending, cfg.MaxPending)
		}
		for _, c := range m.conns {
			for _, d := range c.dirs {
				if len(d.p.buf) > cfg.MaxHead {
					t.Fatalf("head buffer of %d bytes over MaxHead", len(d.p.buf))
				}
			}
			if len(c.held) > maxHeld || c.q.n > cfg.MaxInFlight || c.h2 != nil && len(c.h2.streams) > cfg.MaxInFlight {
				t.Fatalf("connection state over its bounds: held %d, queued %d", len(c.held), c.q.n)
			}
		}
		checkInvariants(t, m)
	}
	m.Expire(t0.Add(time.Hour))
	m.Close(1, t0.Add(2*time.Hour))
	checkInvariants(t, m)
	s := m.Stats()
	if m.InFlight() != 0 || m.npending != 0 || m.Conns() != 0 || uint64(emitted) != s.Requests {
		t.Fatalf("after close: %d in flight, %d conns, %d emitted of %d requests", m.InFlight(), m.Conns(), emitted, s.Requests)
	}
}

// captureSeeds returns the connections of the real captures as scripts.
func captureSeeds(f *testing.F, names ...string) [][]byte {
	var out [][]byte
	for _, name := range names {
		segs, err := readPcap(filepath.Join("testdata", name+".pcap"))
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range conns(segs) {
			// Small inputs fuzz faster: long bodies past 512 bytes of a
			// call are uncaptured, and the first 64 calls are enough.
			chs, _ := c.chunks(RoleClient, 512)
			out = append(out, encodeChunks(chs[:min(len(chs), 64)]))
		}
	}
	return out
}

func FuzzHTTP1(f *testing.F) {
	for _, s := range captureSeeds(f, "nginx", "gohttp") {
		f.Add(s)
	}
	f.Add(encodeChunks(mixed.chunks(view{role: RoleClient, cookie: 1})))
	f.Add(encodeChunks(mixed.chunks(view{role: RoleClient, cookie: 1, limit: 40})))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRun(t, decodeChunks(b))
	})
}

// FuzzHTTP2 starts every input with the client preface, so that the
// fuzzer spends its time in frames and header blocks.
func FuzzHTTP2(f *testing.F) {
	for _, s := range captureSeeds(f, "grpc", "gohttp") {
		f.Add(s)
	}
	f.Add(encodeChunks(grpcConv().chunks(view{role: RoleClient, cookie: 1})))
	f.Fuzz(func(t *testing.T, b []byte) {
		chs := decodeChunks(b)
		if len(chs) == 0 || len(chs[0].Data) < 3 || string(chs[0].Data[:3]) != "PRI" {
			pre := Chunk{Conn: 1, Dir: Sent, Time: t0, Seq: 1000 - uint32(len(clientPreface)), HasSeq: true,
				Size: uint32(len(clientPreface)), Data: []byte(clientPreface)}
			chs = append([]Chunk{pre}, chs...)
		}
		fuzzRun(t, chs)
	})
}

// TestFuzzScriptRoundTrip: a capture encoded as a fuzz script gives the
// same exchanges as the capture itself, so the seeds start where the real
// traffic is.
func TestFuzzScriptRoundTrip(t *testing.T) {
	for _, name := range captures {
		segs, err := readPcap(filepath.Join("testdata", name+".pcap"))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conns(segs) {
			chs, _ := c.chunks(RoleClient, 0)
			direct := newRecorder(t, Config{})
			direct.feed(chs)
			scripted := newRecorder(t, Config{})
			scripted.feed(decodeChunks(encodeChunks(chs)))
			if len(direct.got) != len(scripted.got) {
				t.Fatalf("%s conn %d: %d exchanges direct, %d scripted", name, c.index, len(direct.got), len(scripted.got))
			}
			for i := range direct.got {
				a, b := direct.got[i], scripted.got[i]
				if a.Path != b.Path || a.StatusCode != b.StatusCode || a.StreamID != b.StreamID {
					t.Fatalf("%s conn %d: %+v vs %+v", name, c.index, a, b)
				}
			}
		}
	}
}
