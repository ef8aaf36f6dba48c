package tcpprobe

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

func attached(t testing.TB) *Probe {
	t.Helper()
	testkit.RequireRoot(t)
	p, err := Load(Config{MaxSockets: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Attach(); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitSample polls snapshots until the socket's sample satisfies ok.
func waitSample(t *testing.T, p *Probe, cookie uint64, what string, ok func(observed.TCPSample) bool) observed.TCPSample {
	t.Helper()
	boot := testkit.BootTime(t)
	var last *observed.TCPSample
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		samples, err := p.Snapshot(boot)
		if err != nil {
			t.Fatal(err)
		}
		for i := range samples {
			if samples[i].Cookie == cookie {
				last = &samples[i]
				if ok(*last) {
					return *last
				}
			}
		}
	}
	t.Fatalf("socket %d never %s; last sample: %+v", cookie, what, last)
	return observed.TCPSample{}
}

func closed(s observed.TCPSample) bool      { return !s.ClosedAt.IsZero() }
func established(s observed.TCPSample) bool { return s.State == observed.TCPEstablished }

// dialer records the socket cookie of the connecting socket before connect.
func dialer(cookie *uint64, timeout time.Duration, opts ...func(fd int) error) *net.Dialer {
	return &net.Dialer{Timeout: timeout, Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		cerr := c.Control(func(fd uintptr) {
			for _, o := range opts {
				if err = o(int(fd)); err != nil {
					return
				}
			}
			*cookie, err = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
		})
		return errors.Join(cerr, err)
	}}
}

func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func TestRefused(t *testing.T) {
	p := attached(t)
	cg := testkit.InChildCgroup(t)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := addrPort(t, ln.Addr())
	ln.Close() // nothing listens there now

	start := time.Now()
	var cookie uint64
	if _, err := dialer(&cookie, 5*time.Second).Dial("tcp4", target.String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want ECONNREFUSED", target, err)
	}
	s := waitSample(t, p, cookie, "closed", closed)
	t.Logf("%+v", s)

	if s.CloseCause != observed.CloseRefused || s.Initiator != observed.InitiatorLocal || s.State != observed.TCPClose {
		t.Errorf("cause=%v initiator=%v state=%v, want refused/local/close", s.CloseCause, s.Initiator, s.State)
	}
	if s.Remote != target || s.Local.Addr() != target.Addr() || s.Local.Port() == 0 {
		t.Errorf("tuple %v -> %v, want 127.0.0.1:* -> %v", s.Local, s.Remote, target)
	}
	if s.ResetsReceived != 1 || s.ResetsSent != 0 {
		t.Errorf("resets sent=%d received=%d, want 0/1", s.ResetsSent, s.ResetsReceived)
	}
	if s.PID != uint32(os.Getpid()) || s.Comm != testkit.OwnComm(t) {
		t.Errorf("pid/comm %d/%q, want %d/%q", s.PID, s.Comm, os.Getpid(), testkit.OwnComm(t))
	}
	if s.CgroupID != cg {
		t.Errorf("cgroup id %d, want %d", s.CgroupID, cg)
	}
	// boottime -> wall clock: within the test's window (allow clock jitter).
	if s.OpenedAt.Before(start.Add(-time.Second)) || s.ClosedAt.After(time.Now().Add(time.Second)) || s.ClosedAt.Before(s.OpenedAt) {
		t.Errorf("opened %v closed %v, test ran from %v", s.OpenedAt, s.ClosedAt, start)
	}
}

// pair connects a client to a fresh listener on addr and returns both ends
// with their cookies.
func pair(t *testing.T, network, addr string) (c, s *net.TCPConn, cc, sc uint64) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- conn
	}()
	conn, err := dialer(&cc, 5*time.Second).Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sconn, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	c, s = conn.(*net.TCPConn), sconn.(*net.TCPConn)
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s, cc, testkit.CookieOf(t, s)
}

func TestNormalClose(t *testing.T) {
	for _, tc := range []struct{ name, network, addr string }{
		{"ipv4", "tcp4", "127.0.0.1:0"},
		{"ipv6", "tcp6", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := attached(t)
			c, s, cc, sc := pair(t, tc.network, tc.addr)
			client, server := addrPort(t, c.LocalAddr()), addrPort(t, s.LocalAddr())

			// Open: both ends established, roles and tuples mirror each other.
			co := waitSample(t, p, cc, "established", established)
			so := waitSample(t, p, sc, "established", established)
			if co.Initiator != observed.InitiatorLocal || so.Initiator != observed.InitiatorRemote {
				t.Errorf("initiators client=%v server=%v", co.Initiator, so.Initiator)
			}
			if co.Local != client || co.Remote != server || so.Local != server || so.Remote != client {
				t.Errorf("client %v->%v server %v->%v, want %v<->%v", co.Local, co.Remote, so.Local, so.Remote, client, server)
			}
			if !co.ClosedAt.IsZero() || co.CloseCause != observed.CloseNone || co.OpenedAt.IsZero() || so.OpenedAt.IsZero() {
				t.Errorf("open sample has close data or no open time: %+v", co)
			}

			// Transfer both ways, then the client closes first: it goes
			// through FIN_WAIT2 -> TIME_WAIT, the server through LAST_ACK.
			payload := bytes.Repeat([]byte("x"), 1<<20)
			go func() { c.Write(payload); c.CloseWrite() }()
			got, err := io.ReadAll(s)
			if err != nil || len(got) != len(payload) {
				t.Fatalf("server read %d bytes, %v", len(got), err)
			}
			if _, err := s.Write(payload[:64<<10]); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if got, err := io.ReadAll(c); err != nil || len(got) != 64<<10 {
				t.Fatalf("client read %d bytes, %v", len(got), err)
			}
			c.Close()

			cs := waitSample(t, p, cc, "closed", closed)
			ss := waitSample(t, p, sc, "closed", closed)
			t.Logf("client %+v", cs)
			t.Logf("server %+v", ss)
			for _, x := range []observed.TCPSample{cs, ss} {
				if x.CloseCause != observed.CloseFIN || x.State != observed.TCPClose || x.ResetsSent+x.ResetsReceived != 0 {
					t.Errorf("%v: cause=%v state=%v resets=%d/%d, want fin/close/0", x.Local, x.CloseCause, x.State, x.ResetsSent, x.ResetsReceived)
				}
				if x.SRTT <= 0 || x.SRTT > time.Second {
					t.Errorf("%v: srtt %v", x.Local, x.SRTT)
				}
			}
			if cs.Local != client || cs.Remote != server {
				t.Errorf("closed client tuple %v->%v, want %v->%v", cs.Local, cs.Remote, client, server)
			}
		})
	}
}

func TestReset(t *testing.T) {
	t.Run("linger0", func(t *testing.T) {
		p := attached(t)
		c, s, cc, sc := pair(t, "tcp4", "127.0.0.1:0")
		waitSample(t, p, sc, "established", established)
		if err := c.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		c.Close() // tcp_disconnect: CLOSE first, then the RST
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server read: %v, want ECONNRESET", err)
		}
		cs := waitSample(t, p, cc, "closed", closed)
		ss := waitSample(t, p, sc, "closed", closed)
		if cs.CloseCause != observed.CloseRSTSent || cs.ResetsSent != 1 {
			t.Errorf("client cause=%v resets sent=%d, want rst_sent/1", cs.CloseCause, cs.ResetsSent)
		}
		if ss.CloseCause != observed.CloseRSTReceived || ss.ResetsReceived != 1 {
			t.Errorf("server cause=%v resets received=%d, want rst_received/1", ss.CloseCause, ss.ResetsReceived)
		}
	})
	t.Run("unread data", func(t *testing.T) {
		p := attached(t)
		c, s, cc, sc := pair(t, "tcp4", "127.0.0.1:0")
		if _, err := s.Write([]byte("never read")); err != nil {
			t.Fatal(err)
		}
		waitSample(t, p, cc, "established", established)
		time.Sleep(50 * time.Millisecond) // let the data reach the client's receive queue
		c.Close()                         // unread data: CLOSE then RST
		cs := waitSample(t, p, cc, "closed", closed)
		ss := waitSample(t, p, sc, "closed", closed)
		if cs.CloseCause != observed.CloseRSTSent || ss.CloseCause != observed.CloseRSTReceived {
			t.Errorf("client %v server %v, want rst_sent/rst_received", cs.CloseCause, ss.CloseCause)
		}
	})
}

func TestConnectTimeout(t *testing.T) {
	p := attached(t)
	a, b := testkit.VethPair(t)
	b.Run(t, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "DROP")
	target := netip.MustParseAddrPort("10.200.7.2:9")

	t.Run("client gives up", func(t *testing.T) {
		var cookie uint64
		var err error
		a.Do(t, func() { _, err = dialer(&cookie, 500*time.Millisecond).Dial("tcp4", target.String()) })
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("dial: %v, want a timeout", err)
		}
		s := waitSample(t, p, cookie, "closed", closed)
		t.Logf("%+v", s)
		if s.CloseCause != observed.CloseTimeout || s.Initiator != observed.InitiatorLocal || s.Remote != target || s.ResetsReceived != 0 {
			t.Errorf("cause=%v initiator=%v remote=%v resets=%d, want timeout/local/%v/0", s.CloseCause, s.Initiator, s.Remote, s.ResetsReceived, target)
		}
		if s.Local.Addr() != netip.MustParseAddr("10.200.7.1") || s.Local.Port() == 0 {
			t.Errorf("local %v, want 10.200.7.1 and the port the SYN left from", s.Local)
		}
	})
	t.Run("kernel ETIMEDOUT", func(t *testing.T) {
		var cookie uint64
		var err error
		syncnt := func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_SYNCNT, 1) }
		before := a.Counter(t, "/proc/net/netstat", "TcpExt", "TCPSynRetrans")
		a.Do(t, func() { _, err = dialer(&cookie, 30*time.Second, syncnt).Dial("tcp4", target.String()) })
		if !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("dial: %v, want ETIMEDOUT", err)
		}
		synRetrans := a.Counter(t, "/proc/net/netstat", "TcpExt", "TCPSynRetrans") - before
		s := waitSample(t, p, cookie, "closed", closed)
		t.Logf("%+v (namespace TCPSynRetrans +%d)", s, synRetrans)
		if s.CloseCause != observed.CloseTimeout || s.Retransmits == 0 || uint64(s.Retransmits) != synRetrans {
			t.Errorf("cause=%v retransmits=%d, want timeout and the namespace's %d SYN retransmits", s.CloseCause, s.Retransmits, synRetrans)
		}
	})
}

func TestRetransmits(t *testing.T) {
	p := attached(t)
	a, b := testkit.VethPair(t)

	var ln net.Listener
	var err error
	b.Do(t, func() { ln, err = net.Listen("tcp4", "10.200.7.2:8080") })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan int, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			received <- -1
			return
		}
		defer conn.Close()
		n, _ := io.Copy(io.Discard, conn)
		received <- int(n)
	}()

	var cookie uint64
	var conn net.Conn
	a.Do(t, func() { conn, err = dialer(&cookie, 5*time.Second).Dial("tcp4", "10.200.7.2:8080") })
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*net.TCPConn)
	defer c.Close()
	waitSample(t, p, cookie, "established", established)

	// Black-hole the data long enough for a few RTOs (>= 200 ms each), then
	// let it through.
	b.Run(t, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP")
	if _, err := c.Write(bytes.Repeat([]byte("r"), 10000)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(900 * time.Millisecond)
	b.Run(t, "iptables", "-D", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP")

	var info *unix.TCPInfo
	c.CloseWrite()
	if n := <-received; n != 10000 {
		t.Fatalf("server received %d bytes, want 10000", n)
	}
	rc, _ := c.SyscallConn()
	rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, c)
	c.Close()

	s := waitSample(t, p, cookie, "closed", closed)
	t.Logf("%+v (TCP_INFO total_retrans=%d)", s, info.Total_retrans)
	if s.Retransmits == 0 || s.Retransmits < info.Total_retrans {
		t.Errorf("retransmits %d, kernel counted %d", s.Retransmits, info.Total_retrans)
	}
	if s.CloseCause != observed.CloseFIN {
		t.Errorf("cause %v, want fin", s.CloseCause)
	}
}

func TestDelete(t *testing.T) {
	p := attached(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	var cookie uint64
	dialer(&cookie, time.Second).Dial("tcp4", target)
	waitSample(t, p, cookie, "closed", closed)
	if err := p.Delete([]uint64{cookie, 1 << 62}); err != nil { // the second never existed
		t.Fatal(err)
	}
	samples, err := p.Snapshot(testkit.BootTime(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if s.Cookie == cookie {
			t.Fatalf("socket %d still in the map after Delete", cookie)
		}
	}
	c, err := p.Counters()
	if err != nil || c.Events == 0 || c.DecodeErrors != 0 {
		t.Errorf("counters %+v, %v", c, err)
	}
}

// An established connection whose peer vanishes: retransmissions run out
// (TCP_USER_TIMEOUT), tcp_write_err() stores ETIMEDOUT in sk_err and then
// closes. Only an sk_err read at the CLOSE transition tells this from a FIN.
func TestEstablishedTimeout(t *testing.T) {
	p := attached(t)
	a, b := testkit.VethPair(t)
	var ln net.Listener
	var err error
	b.Do(t, func() { ln, err = net.Listen("tcp4", "10.200.7.2:8081") })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if conn, err := ln.Accept(); err == nil {
			defer conn.Close()
			io.Copy(io.Discard, conn)
		}
	}()

	var cookie uint64
	var conn net.Conn
	userTimeout := func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 800) }
	a.Do(t, func() { conn, err = dialer(&cookie, 5*time.Second, userTimeout).Dial("tcp4", "10.200.7.2:8081") })
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitSample(t, p, cookie, "established", established)

	b.Run(t, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8081", "-j", "DROP")
	if _, err := conn.Write([]byte("into the void")); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("read: %v, want ETIMEDOUT", err)
	}
	s := waitSample(t, p, cookie, "closed", closed)
	t.Logf("%+v", s)
	if s.CloseCause != observed.CloseTimeout || s.Retransmits == 0 {
		t.Errorf("cause=%v retransmits=%d, want timeout and >0", s.CloseCause, s.Retransmits)
	}
}

// After the client closes, its full socket goes to CLOSE (fin) and an
// inet_timewait_sock with the same cookie takes over (orphaned FIN_WAIT2 ->
// tcp_time_wait). Data the server sends then is answered with a RST by that
// timewait socket: it counts as a reset sent but must not rewrite the close
// cause, while the server sees rst_received.
func TestTimeWaitReset(t *testing.T) {
	p := attached(t)
	c, s, cc, sc := pair(t, "tcp4", "127.0.0.1:0")
	waitSample(t, p, sc, "established", established)
	c.Close()
	cs := waitSample(t, p, cc, "closed", closed)
	if cs.CloseCause != observed.CloseFIN || cs.ResetsSent != 0 {
		t.Fatalf("client at close: cause=%v resets sent=%d, want fin/0", cs.CloseCause, cs.ResetsSent)
	}
	if _, err := s.Write([]byte("too late")); err != nil {
		t.Fatal(err)
	}
	// In CLOSE_WAIT the reset sets sk_err = EPIPE (reads keep returning
	// EOF), so watch the samples rather than the socket.
	cs = waitSample(t, p, cc, "reset from TIME_WAIT", func(x observed.TCPSample) bool { return x.ResetsSent == 1 })
	ss := waitSample(t, p, sc, "closed", closed)
	t.Logf("client %+v\nserver %+v", cs, ss)
	if cs.CloseCause != observed.CloseFIN {
		t.Errorf("client cause %v after its TIME_WAIT reset, want fin", cs.CloseCause)
	}
	if ss.CloseCause != observed.CloseRSTReceived {
		t.Errorf("server cause %v, want rst_received", ss.CloseCause)
	}
}
