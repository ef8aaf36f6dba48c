package flowprobe

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// lineEnd is one socket of a test connection and its TCP_INFO at a mark.
type lineEnd struct {
	name string
	c    *net.TCPConn
	mark *unix.TCPInfo
}

// TestTCPLines runs two loopback connections on a probe with one line per
// direction, so their four sockets contend for it: one socket per direction
// counts in the line, the others in their flow entries, and every socket's
// flow must still match its TCP_INFO segment counts exactly. Then the line
// holder's flow is deleted (its line is released and its later packets
// count in a new entry), and another holder's entry is removed behind the
// probe's back, as an LRU eviction would (the orphaned line is released at
// the second sweep that finds it orphaned, and the socket counts in a new
// entry again).
func TestTCPLines(t *testing.T) {
	testkit.RequireRoot(t)
	// The probe sees this test's sockets only: with one line, any other
	// traffic on the machine would contend for it too.
	testkit.InChildCgroup(t)
	cgroup := testkit.OwnCgroup(t)
	var ends []*lineEnd
	pair := func(name string) (*net.TCPConn, *net.TCPConn) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		acc := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			acc <- c
		}()
		cli, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		srv := <-acc
		if srv == nil {
			t.Fatal("accept failed")
		}
		t.Cleanup(func() { cli.Close(); srv.Close() })
		c, s := cli.(*net.TCPConn), srv.(*net.TCPConn)
		ends = append(ends, &lineEnd{name: name + " client", c: c}, &lineEnd{name: name + " server", c: s})
		return c, s
	}
	// Connected before the probe: every packet it sees is an ESTABLISHED
	// socket's, and TCP_INFO deltas are the oracle.
	a1, a2 := pair("a")
	b1, b2 := pair("b")
	exchange := func(rounds int) {
		buf := make([]byte, 4000)
		for range rounds {
			for _, c := range [][2]*net.TCPConn{{a1, a2}, {b1, b2}} {
				if _, err := c[0].Write(buf[:700]); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c[1], buf[:700]); err != nil {
					t.Fatal(err)
				}
				if _, err := c[1].Write(buf[:2500]); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c[0], buf[:2500]); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(100 * time.Millisecond) // delayed ACKs
	}
	markAll := func() {
		for _, e := range ends {
			e.mark = tcpInfo(t, e.c)
		}
	}

	p, err := Load(Config{MaxFlows: 4096, TCPLines: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Attach(cgroup); err != nil {
		t.Fatal(err)
	}
	boot := testkit.BootTime(t)
	markAll()

	// check compares each socket's flow with its segments since its mark.
	check := func(stage string) map[uint64]observed.FlowSample {
		t.Helper()
		byCookie := map[uint64]observed.FlowSample{}
		for _, e := range ends {
			f := find(t, p, boot, addrPort(e.c.LocalAddr()), addrPort(e.c.RemoteAddr()))
			now := tcpInfo(t, e.c)
			tx, rx := uint64(now.Segs_out-e.mark.Segs_out), uint64(now.Segs_in-e.mark.Segs_in)
			if f.TxPackets != tx || f.RxPackets != rx || f.TxBytes < 40*tx || f.RxBytes < 40*rx {
				t.Errorf("%s: %s flow tx %d pkts %d B, rx %d pkts %d B; TCP_INFO says tx %d rx %d",
					stage, e.name, f.TxPackets, f.TxBytes, f.RxPackets, f.RxBytes, tx, rx)
			}
			byCookie[f.Cookie] = f
		}
		return byCookie
	}
	line := func(tx bool) flowFlowLine {
		t.Helper()
		m := p.objs.RxLines
		if tx {
			m = p.objs.TxLines
		}
		var ln flowFlowLine
		if err := m.Lookup(uint32(0), &ln); err != nil {
			t.Fatal(err)
		}
		return ln
	}

	exchange(10)
	flows := check("contended")
	txHolder, rxHolder := line(true), line(false)
	for _, ln := range []flowFlowLine{txHolder, rxHolder} {
		if _, ok := flows[ln.Cookie]; !ok || ln.Packets == 0 {
			t.Fatalf("line %+v: not held by one of the sockets, or it counted nothing: the fast path did not run", ln)
		}
	}

	// Reported and deleted: the line is released, the socket counts anew.
	holder := flows[txHolder.Cookie]
	if err := p.Delete([]observed.FlowSample{holder}); err != nil {
		t.Fatal(err)
	}
	if ln := line(true); ln.Cookie != txHolder.Cookie|lineDead {
		t.Fatalf("tx line after deleting its flow: cookie %#x, want %#x (released)", ln.Cookie, txHolder.Cookie|lineDead)
	}
	for _, e := range ends {
		if testkit.CookieOf(t, e.c) == txHolder.Cookie {
			e.mark = tcpInfo(t, e.c) // its new entry starts here
		}
	}
	exchange(5)
	check("after deleting the tx line holder's flow")
	if ln := line(true); ln.Cookie == txHolder.Cookie {
		t.Errorf("a released line was taken again by its own socket")
	}

	// Evicted behind the probe's back: the rx holder's entry goes, its
	// line is released at the second sweep that finds it orphaned.
	rxHolder = line(false)
	var victim *lineEnd
	for _, e := range ends {
		if testkit.CookieOf(t, e.c) == rxHolder.Cookie {
			victim = e
		}
	}
	if victim == nil {
		t.Fatalf("rx line %+v is not held by a test socket", rxHolder)
	}
	f := find(t, p, boot, addrPort(victim.c.LocalAddr()), addrPort(victim.c.RemoteAddr()))
	k := encodeKey(f)
	if err := p.objs.Flows.Delete(&k); err != nil {
		t.Fatal(err)
	}
	exchange(2) // its received packets count in the orphaned line
	// Released at the second sweep that finds it orphaned: sweeps run
	// every sweepEvery reads, so after one to two sweepEvery reads.
	reads := 0
	for ; reads <= 2*sweepEvery && line(false).Cookie == rxHolder.Cookie; reads++ {
		if _, err := p.Snapshot(boot); err != nil {
			t.Fatal(err)
		}
	}
	if ln := line(false); ln.Cookie != rxHolder.Cookie|lineDead || reads <= sweepEvery/2 {
		t.Fatalf("rx line after %d reads of its orphan: cookie %#x, want %#x (released after %d to %d reads)",
			reads, ln.Cookie, rxHolder.Cookie|lineDead, sweepEvery+1, 2*sweepEvery)
	}
	victim.mark = tcpInfo(t, victim.c)
	exchange(5)
	check("after an eviction")
}
