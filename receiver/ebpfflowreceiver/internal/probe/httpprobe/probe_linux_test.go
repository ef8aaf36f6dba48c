package httpprobe

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// capture runs a probe and keeps what it reports of the watched sockets,
// and every chunk of any socket that carries a marker.
type capture struct {
	p *Probe

	mu      sync.Mutex
	watch   map[uint64]bool
	opens   map[uint64]observed.HTTPConn
	chunks  map[uint64][]httpmatch.Chunk
	closes  map[uint64]time.Time
	markers [][]byte
	marked  map[string]int // marker -> chunks carrying it
	ticks   int
}

func startCapture(t *testing.T, cfg Config) *capture {
	t.Helper()
	testkit.RequireRoot(t)
	p, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Attach(); err != nil {
		p.Close()
		t.Fatal(err)
	}
	c := &capture{p: p, watch: map[uint64]bool{}, opens: map[uint64]observed.HTTPConn{},
		chunks: map[uint64][]httpmatch.Chunk{}, closes: map[uint64]time.Time{}, marked: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, testkit.BootTime(t), c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		p.Close()
	})
	return c
}

func (c *capture) Open(o *observed.HTTPConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watch[o.Cookie] {
		c.opens[o.Cookie] = *o
	}
}

func (c *capture) Chunk(ch *httpmatch.Chunk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.markers {
		if bytes.Contains(ch.Data, m) {
			c.marked[string(m)]++
		}
	}
	if c.watch[ch.Conn] {
		cp := *ch
		cp.Data = bytes.Clone(ch.Data)
		c.chunks[ch.Conn] = append(c.chunks[ch.Conn], cp)
	}
}

func (c *capture) Close(cookie uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watch[cookie] {
		c.closes[cookie] = at
	}
}

func (c *capture) Tick(time.Time) {
	c.mu.Lock()
	c.ticks++
	c.mu.Unlock()
}

func (c *capture) watchFD(t *testing.T, fd int) uint64 {
	t.Helper()
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.watch[cookie] = true
	c.mu.Unlock()
	return cookie
}

// waitFor polls until cond holds under the lock, or fails after 10 s.
func (c *capture) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// socketPair connects a client to a listener on 127.0.0.1 in ns with raw
// blocking sockets, so each call below is exactly one system call.
func socketPair(t *testing.T, ns testkit.Netns, port int) (cli, srv int) {
	t.Helper()
	var err error
	ns.Do(t, func() {
		var ln int
		if ln, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0); err != nil {
			return
		}
		defer unix.Close(ln)
		addr := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
		if err = unix.Bind(ln, addr); err != nil {
			return
		}
		if err = unix.Listen(ln, 1); err != nil {
			return
		}
		if cli, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0); err != nil {
			return
		}
		if err = unix.Connect(cli, addr); err != nil {
			return
		}
		srv, _, err = unix.Accept4(ln, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(cli); unix.Close(srv) })
	return cli, srv
}

// readFull reads n bytes from fd in reads of at most bufSize and returns
// them and the size of each read.
func readFull(t *testing.T, fd int, n int, bufSize int) ([]byte, []int) {
	var (
		out   []byte
		sizes []int
	)
	buf := make([]byte, bufSize)
	for len(out) < n {
		k, err := unix.Read(fd, buf[:min(bufSize, n-len(out))])
		if err != nil || k == 0 {
			t.Errorf("read: %d, %v after %d of %d bytes", k, err, len(out), n)
			break
		}
		out = append(out, buf[:k]...)
		sizes = append(sizes, k)
	}
	return out, sizes
}

// TestCaptureSocketCalls drives one loopback TCP connection through every
// system call the probe hooks and checks each reported call against what
// the program did and against the wire (dumpcap): the exact bytes and
// sizes, the sequence numbers of both directions, the capture limit, the
// end of stream, the connection's addresses, process and cgroup, and its
// close. File, pipe, UDP and Unix socket I/O of the same process, carrying
// a marker, must not be captured.
func TestCaptureSocketCalls(t *testing.T) {
	const captureBytes = 4096
	cgroupID := testkit.InChildCgroup(t) // sockets are made after: theirs
	c := startCapture(t, Config{CaptureBytes: captureBytes, MaxConns: 4096})
	ns := testkit.NewNetns(t, "ebpfflow-httpcap")
	port := 18080
	pcap := testkit.StartPcap(t, ns, "lo", "tcp port "+strconv.Itoa(port), t.TempDir())
	cli, srv := socketPair(t, ns, port)
	cliCookie, srvCookie := c.watchFD(t, cli), c.watchFD(t, srv)

	// The conversation; each step is one call on one end.
	var (
		req      = []byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		resp1    = []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n")
		resp2    = []byte("\r\nhello")
		sendto   = randomBytes(700)
		msg1     = randomBytes(100)
		msg2     = randomBytes(3000) // with msg1, past the capture: cut at captureBytes
		file     = randomBytes(100_000)
		upload   = randomBytes(200_000)
		sentBy   = map[uint64][][]byte{} // what each call sent, in order
		recvSize = map[uint64][]int{}    // what each receive returned, in order
	)
	sent := func(cookie uint64, parts ...[]byte) { sentBy[cookie] = append(sentBy[cookie], bytes.Join(parts, nil)) }
	mustN := func(n int, err error, want int, what string) {
		t.Helper()
		if err != nil || n != want {
			t.Fatalf("%s: %d, %v (want %d)", what, n, err, want)
		}
	}

	n, err := unix.Write(cli, req)
	mustN(n, err, len(req), "write")
	sent(cliCookie, req)
	got := make([]byte, 1000)
	n, err = unix.Read(srv, got)
	mustN(n, err, len(req), "read")
	recvSize[srvCookie] = append(recvSize[srvCookie], n)

	n, err = unix.Writev(srv, [][]byte{resp1, resp2})
	mustN(n, err, len(resp1)+len(resp2), "writev")
	sent(srvCookie, resp1, resp2)
	small, rest := make([]byte, 10), make([]byte, 1000)
	n, err = unix.Readv(cli, [][]byte{small, rest})
	mustN(n, err, len(resp1)+len(resp2), "readv")
	recvSize[cliCookie] = append(recvSize[cliCookie], n)

	mustN(len(sendto), unix.Sendto(cli, sendto, 0, nil), len(sendto), "sendto")
	sent(cliCookie, sendto)
	n, _, err = unix.Recvfrom(srv, got, 0)
	mustN(n, err, len(sendto), "recvfrom")
	recvSize[srvCookie] = append(recvSize[srvCookie], n)

	n, err = unix.SendmsgBuffers(srv, [][]byte{msg1, msg2}, nil, nil, 0)
	mustN(n, err, len(msg1)+len(msg2), "sendmsg")
	sent(srvCookie, msg1, msg2)
	big := make([]byte, 8192)
	n, _, _, _, err = unix.RecvmsgBuffers(cli, [][]byte{big}, nil, 0)
	mustN(n, err, len(msg1)+len(msg2), "recvmsg")
	recvSize[cliCookie] = append(recvSize[cliCookie], n)

	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fileRead := make(chan []int)
	go func() {
		_, sizes := readFull(t, cli, len(file), 8192)
		fileRead <- sizes
	}()
	for off := 0; off < len(file); {
		k, err := unix.Sendfile(srv, int(f.Fd()), nil, len(file)-off)
		if err != nil || k <= 0 {
			t.Fatalf("sendfile: %d, %v", k, err)
		}
		sentBy[srvCookie] = append(sentBy[srvCookie], file[off:off+k])
		off += k
	}
	recvSize[cliCookie] = append(recvSize[cliCookie], <-fileRead...)

	// A large write while the server reads: one call, only the first
	// captureBytes copied.
	type read struct {
		data  []byte
		sizes []int
	}
	readDone := make(chan read)
	go func() {
		data, sizes := readFull(t, srv, len(upload), 65536)
		readDone <- read{data, sizes}
	}()
	n, err = unix.Write(cli, upload)
	mustN(n, err, len(upload), "write upload")
	sent(cliCookie, upload)
	r := <-readDone
	if !bytes.Equal(r.data, upload) {
		t.Fatal("upload corrupted")
	}
	recvSize[srvCookie] = append(recvSize[srvCookie], r.sizes...)

	// Marked bytes through everything that is not a TCP socket.
	marks := [][]byte{[]byte("marker-file-" + rand.Text()), []byte("marker-pipe-" + rand.Text()),
		[]byte("marker-udp-" + rand.Text()), []byte("marker-unix-" + rand.Text())}
	c.mu.Lock()
	c.markers = marks
	c.mu.Unlock()
	for _, m := range marks {
		notTCP(t, ns, m)
	}
	// The server closes; the client reads the end of the stream, closes.
	unix.Close(srv)
	if n, err := unix.Read(cli, got); n != 0 || err != nil {
		t.Fatalf("read after close: %d, %v", n, err)
	}
	recvSize[cliCookie] = append(recvSize[cliCookie], 0)
	unix.Close(cli)
	for _, m := range marks {
		notTCP(t, ns, m)
	}

	c.waitFor(t, "both closes", func() bool { return len(c.closes) == 2 })
	pcap.Stop(t)
	c.mu.Lock()
	defer c.mu.Unlock()

	for m, k := range c.marked {
		t.Errorf("marker %q (written to a file, pipe, UDP or Unix socket) captured in %d chunks", m, k)
	}
	// The wire: each end's initial sequence number.
	isn := map[uint64]uint32{}
	for _, row := range pcap.Fields(t, "tcp.flags.syn == 1", "tcp.srcport", "tcp.seq_raw") {
		seq, _ := strconv.ParseUint(row[1], 10, 32)
		if row[0] == strconv.Itoa(port) {
			isn[srvCookie] = uint32(seq)
		} else {
			isn[cliCookie] = uint32(seq)
		}
	}
	if len(isn) != 2 {
		t.Fatalf("SYN and SYN-ACK not in the capture: %v", isn)
	}
	// Every data segment as the wire saw it: a send must begin inside one.
	type segment struct{ seq, len uint32 }
	var wire []segment
	for _, row := range pcap.Fields(t, "tcp.len > 0", "tcp.seq_raw", "tcp.len") {
		seq, _ := strconv.ParseUint(row[0], 10, 32)
		n, _ := strconv.ParseUint(row[1], 10, 32)
		wire = append(wire, segment{uint32(seq), uint32(n)})
	}
	onWire := func(seq uint32) bool {
		return slices.ContainsFunc(wire, func(s segment) bool { return seq-s.seq < s.len })
	}

	peer := map[uint64]uint64{cliCookie: srvCookie, srvCookie: cliCookie}
	for _, cookie := range []uint64{cliCookie, srvCookie} {
		name := map[uint64]string{cliCookie: "client", srvCookie: "server"}[cookie]
		chunks := c.chunks[cookie]
		var sends, recvs []httpmatch.Chunk
		var sentBytes, readBytes uint32
		for _, ch := range chunks {
			if ch.Time.IsZero() || !ch.HasSeq || !ch.HasOtherSeq || ch.PID != uint32(os.Getpid()) {
				t.Errorf("%s: chunk %+v: time, seqs and pid must be set", name, ch)
			}
			// Causal positions: everything this end read before a send,
			// everything it had sent when a receive returned.
			switch ch.Dir {
			case httpmatch.Sent:
				if want := isn[peer[cookie]] + 1 + readBytes; ch.OtherSeq != want {
					t.Errorf("%s send #%d: other seq %d, want %d", name, len(sends), ch.OtherSeq, want)
				}
				sends = append(sends, ch)
				sentBytes += ch.Size
			case httpmatch.Received:
				readBytes += ch.Size
				if want := isn[cookie] + 1 + sentBytes; ch.OtherSeq != want {
					t.Errorf("%s receive #%d: other seq %d, want %d", name, len(recvs), ch.OtherSeq, want)
				}
				recvs = append(recvs, ch)
			}
		}
		// Sends: one chunk per call, its exact bytes up to the capture.
		if len(sends) != len(sentBy[cookie]) {
			t.Fatalf("%s: %d send chunks, want %d", name, len(sends), len(sentBy[cookie]))
		}
		seq := isn[cookie] + 1
		for i, ch := range sends {
			call := sentBy[cookie][i]
			want := call[:min(len(call), captureBytes)]
			if ch.Size != uint32(len(call)) || ch.Seq != seq {
				t.Errorf("%s send #%d: size %d seq %d, want %d at %d", name, i, ch.Size, ch.Seq, len(call), seq)
			}
			isSendfile := cookie == srvCookie && i >= 2 // writev, sendmsg, then sendfile
			switch {
			case isSendfile && len(ch.Data) != 0:
				t.Errorf("%s sendfile #%d: %d bytes captured, want none", name, i, len(ch.Data))
			case !isSendfile && !bytes.Equal(ch.Data, want):
				t.Errorf("%s send #%d: captured %d bytes %.40q, want %d bytes %.40q", name, i, len(ch.Data), ch.Data, len(want), want)
			}
			if !onWire(ch.Seq) {
				t.Errorf("%s send #%d: no segment carries seq %d on the wire", name, i, ch.Seq)
			}
			seq += ch.Size
		}
		// Receives: one chunk per call, in the peer's sequence space,
		// contiguous, with the bytes the peer sent.
		if got := sizes(recvs); !slices.Equal(got, recvSize[cookie]) {
			t.Errorf("%s: receive sizes %v, want %v", name, got, recvSize[cookie])
		}
		stream := bytes.Join(sentBy[peer[cookie]], nil)
		seq = isn[peer[cookie]] + 1
		for i, ch := range recvs {
			off := int(ch.Seq - (isn[peer[cookie]] + 1))
			if ch.Seq != seq {
				t.Errorf("%s receive #%d: seq %d, want %d", name, i, ch.Seq, seq)
			}
			if off < 0 || off+len(ch.Data) > len(stream) || !bytes.Equal(ch.Data, stream[off:off+len(ch.Data)]) {
				t.Errorf("%s receive #%d: captured bytes are not the stream's at %d", name, i, off)
			}
			if want := min(int(ch.Size), captureBytes); len(ch.Data) != want {
				t.Errorf("%s receive #%d: %d bytes captured of %d, want %d", name, i, len(ch.Data), ch.Size, want)
			}
			seq += ch.Size
		}
		if last := recvs[len(recvs)-1]; cookie == cliCookie && last.Size != 0 {
			t.Errorf("client: last receive %d bytes, want the end of stream (0)", last.Size)
		}
		// The connection: addresses, process, cgroup, and its close.
		o, ok := c.opens[cookie]
		if !ok {
			t.Fatalf("%s: no open record", name)
		}
		if listener := map[uint64]uint16{cliCookie: o.Remote.Port(), srvCookie: o.Local.Port()}[cookie]; listener != uint16(port) ||
			o.Local.Addr().String() != "127.0.0.1" || o.Remote.Addr().String() != "127.0.0.1" || o.Local.Port() == o.Remote.Port() {
			t.Errorf("%s: open %v -> %v, want 127.0.0.1 on both ends and the listener's port %d on the right one", name, o.Local, o.Remote, port)
		}
		if o.PID != uint32(os.Getpid()) || o.Comm != testkit.OwnComm(t) || o.CgroupID != cgroupID {
			t.Errorf("%s: open pid %d comm %q cgroup %d, want %d %q %d", name, o.PID, o.Comm, o.CgroupID, os.Getpid(), testkit.OwnComm(t), cgroupID)
		}
		if o.Time.After(chunks[0].Time) {
			t.Errorf("%s: open at %v after the first chunk at %v", name, o.Time, chunks[0].Time)
		}
		if at := c.closes[cookie]; at.Before(chunks[len(chunks)-1].Time) && cookie == cliCookie {
			t.Errorf("%s: close at %v before the last chunk at %v", name, at, chunks[len(chunks)-1].Time)
		}
	}
}

func sizes(chs []httpmatch.Chunk) []int {
	out := make([]int, len(chs))
	for i, ch := range chs {
		out[i] = int(ch.Size)
	}
	return out
}

// notTCP moves marker m through what its name says (a file, a pipe, a UDP
// socket or a Unix stream socket) with the calls the probe hooks.
func notTCP(t *testing.T, ns testkit.Netns, m []byte) {
	t.Helper()
	buf := make([]byte, 256)
	switch {
	case bytes.HasPrefix(m, []byte("marker-file-")):
		f, err := os.Create(filepath.Join(t.TempDir(), "marked"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd := int(f.Fd())
		if _, err := unix.Write(fd, m); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Writev(fd, [][]byte{m, m}); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Pread(fd, buf, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Seek(fd, 0, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Read(fd, buf); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Readv(fd, [][]byte{buf}); err != nil {
			t.Fatal(err)
		}
	case bytes.HasPrefix(m, []byte("marker-pipe-")):
		var p [2]int
		if err := unix.Pipe(p[:]); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		if _, err := unix.Write(p[1], m); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Read(p[0], buf); err != nil {
			t.Fatal(err)
		}
	case bytes.HasPrefix(m, []byte("marker-udp-")):
		ns.Do(t, func() {
			a, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := net.Dial("udp4", a.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, err := b.Write(m); err != nil {
				t.Fatal(err)
			}
			if _, _, err := a.ReadFrom(buf); err != nil {
				t.Fatal(err)
			}
		})
	default:
		p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		if err := unix.Sendto(p[0], m, 0, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := unix.Recvfrom(p[1], buf, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.SendmsgBuffers(p[0], [][]byte{m}, nil, nil, 0); err != nil {
			t.Fatal(err)
		}
		if _, _, _, _, err := unix.RecvmsgBuffers(p[1], [][]byte{buf}, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIgnore: a connection user space ignores is no longer copied, and
// its close is still reported.
func TestIgnore(t *testing.T) {
	c := startCapture(t, Config{CaptureBytes: 64, MaxConns: 4096})
	ns := testkit.NewNetns(t, "ebpfflow-httpign")
	cli, srv := socketPair(t, ns, 18081)
	cliCookie, srvCookie := c.watchFD(t, cli), c.watchFD(t, srv)
	exchange(t, cli, srv)
	c.waitFor(t, "the first chunks", func() bool { return len(c.chunks[cliCookie]) == 1 && len(c.chunks[srvCookie]) == 1 })
	if err := c.p.Ignore(cliCookie); err != nil {
		t.Fatal(err)
	}
	if c.p.Ignored() != 1 {
		t.Errorf("Ignored() = %d, want 1", c.p.Ignored())
	}
	exchange(t, cli, srv)
	exchange(t, cli, srv)
	unix.Close(cli)
	unix.Close(srv)
	c.waitFor(t, "both closes", func() bool { return len(c.closes) == 2 })
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.chunks[cliCookie]); n != 1 {
		t.Errorf("client: %d chunks, want 1 (none after Ignore)", n)
	}
	if n := len(c.chunks[srvCookie]); n != 3 {
		t.Errorf("server: %d chunks, want 3", n)
	}
	if err := c.p.Ignore(cliCookie); err != nil {
		t.Errorf("Ignore of a closed connection: %v", err)
	}
}

// TestSkipBody: calls lying wholly inside a body range are reported by
// their size and sequence number without bytes, in both directions; the
// call that goes past the range is copied as usual and the kernel forgets
// the range; a range set on an ignored connection does not undo Ignore.
func TestSkipBody(t *testing.T) {
	c := startCapture(t, Config{CaptureBytes: 4096, MaxConns: 4096})
	ns := testkit.NewNetns(t, "ebpfflow-httpskip")
	cli, srv := socketPair(t, ns, 18083)
	cliCookie, srvCookie := c.watchFD(t, cli), c.watchFD(t, srv)
	head := randomBytes(100)
	if _, err := unix.Write(cli, head); err != nil {
		t.Fatal(err)
	}
	readFull(t, srv, len(head), len(head))
	c.waitFor(t, "the head's chunks", func() bool { return len(c.chunks[cliCookie]) == 1 && len(c.chunks[srvCookie]) == 1 })
	c.mu.Lock()
	sendFrom := c.chunks[cliCookie][0].Seq + 100
	recvFrom := c.chunks[srvCookie][0].Seq + 100
	c.mu.Unlock()
	// A 3500-byte body: three calls of 1000 inside, one of 1000 crossing
	// its end, one of 500 after it.
	if err := c.p.SkipBody(cliCookie, true, sendFrom, sendFrom+3500); err != nil {
		t.Fatal(err)
	}
	if err := c.p.SkipBody(srvCookie, false, recvFrom, recvFrom+3500); err != nil {
		t.Fatal(err)
	}
	body := randomBytes(4500)
	for off := 0; off < len(body); {
		n := min(1000, len(body)-off)
		if _, err := unix.Write(cli, body[off:off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	got, _ := readFull(t, srv, len(body), 1000)
	if !bytes.Equal(got, body) {
		t.Fatal("server read other bytes than the client wrote")
	}
	c.waitFor(t, "the body's chunks", func() bool { return len(c.chunks[cliCookie]) == 6 && len(c.chunks[srvCookie]) == 6 })
	c.mu.Lock()
	for _, side := range []struct {
		name   string
		cookie uint64
		from   uint32
	}{{"client", cliCookie, sendFrom}, {"server", srvCookie, recvFrom}} {
		seq := side.from
		for i, ch := range c.chunks[side.cookie][1:] {
			size := uint32(min(1000, 4500-1000*i))
			var want []byte
			if i >= 3 { // the call crossing the end, and the one after
				want = body[1000*i : 1000*i+int(size)]
			}
			if ch.Seq != seq || ch.Size != size || !bytes.Equal(ch.Data, want) {
				t.Errorf("%s call %d: seq %d size %d, %d bytes captured; want seq %d size %d, %d bytes", side.name, i, ch.Seq, ch.Size, len(ch.Data), seq, size, len(want))
			}
			seq += size
		}
		var st httpHttpConnState
		if err := c.p.objs.Conns.Lookup(&side.cookie, &st); err != nil {
			t.Fatal(err)
		}
		for d, k := range st.Skip {
			if k.From != k.To {
				t.Errorf("%s: direction %d keeps its range [%d, %d) after a call went past it", side.name, d, k.From, k.To)
			}
		}
	}
	c.mu.Unlock()

	if err := c.p.Ignore(srvCookie); err != nil {
		t.Fatal(err)
	}
	if err := c.p.SkipBody(srvCookie, false, recvFrom, recvFrom+1<<20); err != nil {
		t.Fatal(err)
	}
	var st httpHttpConnState
	if err := c.p.objs.Conns.Lookup(&srvCookie, &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&uint32(httpHttpConnFlagHTTP_CONN_IGNORED) == 0 {
		t.Error("SkipBody undid Ignore")
	}
	if err := c.p.SkipBody(1<<62, true, 1, 2); err != nil {
		t.Errorf("SkipBody of a connection not tracked: %v", err)
	}
}

// TestMapFull: with the connection map full, a connection is not
// captured and each of its calls is counted (map_full).
func TestMapFull(t *testing.T) {
	const maxConns = 64
	c := startCapture(t, Config{CaptureBytes: 64, MaxConns: maxConns})
	// Fill the map with connections that do not exist (the machine's
	// other sockets may take slots too: either way it is full).
	for i := range uint64(maxConns) {
		cookie, st := 1<<62+i, httpHttpConnState{}
		_ = c.p.objs.Conns.Update(&cookie, &st, 0)
	}
	ns := testkit.NewNetns(t, "ebpfflow-httpfull")
	cli, srv := socketPair(t, ns, 18082)
	cliCookie, srvCookie := c.watchFD(t, cli), c.watchFD(t, srv)
	before, err := c.p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		exchange(t, cli, srv)
	}
	after, err := c.p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if n := after.MapFull - before.MapFull; n < 10 {
		t.Errorf("map_full rose by %d, want at least the 10 calls made", n)
	}
	time.Sleep(300 * time.Millisecond) // a poll: anything captured has arrived
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.chunks[cliCookie]) + len(c.chunks[srvCookie]); n != 0 {
		t.Errorf("%d chunks captured with the connection map full", n)
	}
}

func exchange(t *testing.T, cli, srv int) {
	t.Helper()
	buf := make([]byte, 100)
	if _, err := unix.Write(cli, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Read(srv, buf); err != nil {
		t.Fatal(err)
	}
}

// TestRingWraps streams records through a small ring, many times round:
// every call arrives once, in order, with its exact bytes, across the
// ring's end and the reader's releases of space; a record the kernel could
// not write is counted (ringbuf_full), never skipped silently.
func TestRingWraps(t *testing.T) {
	const (
		ringBytes = 1 << 16
		rounds    = 4000
		msgLen    = 200 // a record of 240 bytes, 8-byte aligned
	)
	c := startCapture(t, Config{RingBytes: ringBytes, CaptureBytes: 4096, MaxConns: 4096})
	ns := testkit.NewNetns(t, "ebpfflow-httpwrap")
	cli, srv := socketPair(t, ns, 18083)
	cliCookie := c.watchFD(t, cli)
	exchange(t, cli, srv) // "ping": where the client's sequence numbers start
	c.waitFor(t, "the first write", func() bool { return len(c.chunks[cliCookie]) == 1 })
	c.mu.Lock()
	seq0 := c.chunks[cliCookie][0].Seq + 4
	c.chunks[cliCookie] = nil
	c.mu.Unlock()
	before, err := c.p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	sent := make([][]byte, rounds)
	buf := make([]byte, msgLen)
	for i := range sent {
		sent[i] = randomBytes(msgLen)
		if n, err := unix.Write(cli, sent[i]); err != nil || n != msgLen {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		for n := 0; n < msgLen; {
			k, err := unix.Read(srv, buf[n:])
			if err != nil || k == 0 {
				t.Fatalf("read %d: %d, %v", i, k, err)
			}
			n += k
		}
	}
	after, err := c.p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	lost := after.RingbufFull - before.RingbufFull // any connection's: an upper bound for ours
	c.waitFor(t, "the client's writes", func() bool { return uint64(len(c.chunks[cliCookie]))+lost >= rounds })
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.chunks[cliCookie]
	if lost == 0 && len(got) != rounds {
		t.Fatalf("%d chunks for %d writes, none lost", len(got), rounds)
	}
	// Each chunk is the write its sequence number says, in order.
	for _, ch := range got {
		i := int(ch.Seq-seq0) / msgLen
		if i < 0 || i >= rounds || int(ch.Seq-seq0)%msgLen != 0 {
			t.Fatalf("chunk at seq %d is no write's", ch.Seq)
		}
		if !bytes.Equal(ch.Data, sent[i]) {
			t.Fatalf("write %d: captured bytes differ", i)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq-seq0 <= got[i-1].Seq-seq0 {
			t.Fatalf("chunk %d out of order: seq %d after %d", i, got[i].Seq, got[i-1].Seq)
		}
	}
	t.Logf("%d writes, %d captured, %d records lost on the machine, %.0f ring lengths", rounds, len(got), lost, float64(rounds*2*(headerSize+msgLen))/ringBytes)
}
