package flowprobe

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/privileged"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/probetest"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/record"
)

// attached loads the probe and attaches it to the cgroup v2 root.
func attached(t *testing.T) (*Probe, string, time.Time) {
	t.Helper()
	privileged.Require(t)
	root := probetest.CgroupV2Mount(t)
	p, err := Load(Config{MaxFlows: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Attach(root); err != nil {
		t.Fatal(err)
	}
	return p, root, probetest.BootTime(t)
}

// find returns the sample of the flow local -> remote.
func find(t *testing.T, p *Probe, boot time.Time, local, remote netip.AddrPort) record.FlowSample {
	t.Helper()
	samples, err := p.Snapshot(boot)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if s.Local == local && s.Remote == remote {
			return s
		}
	}
	t.Fatalf("no flow %s -> %s among %d samples", local, remote, len(samples))
	return record.FlowSample{}
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	panic(fmt.Sprintf("unexpected %T", a))
}

// TestUDPExact sends k datagrams of n bytes and expects exactly k packets
// and k*(n + IP header + 8) bytes on both sockets' flows.
func TestUDPExact(t *testing.T) {
	p, _, boot := attached(t)
	for _, tc := range []struct {
		net, addr string
		iphdr     uint64
	}{
		{"udp4", "127.0.0.1:0", 20},
		{"udp6", "[::1]:0", 40},
	} {
		t.Run(tc.net, func(t *testing.T) {
			srv, err := net.ListenPacket(tc.net, tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cli, err := net.Dial(tc.net, srv.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			const k, n = 10, 1000
			buf := make([]byte, n)
			for range k {
				if _, err := cli.Write(buf); err != nil {
					t.Fatal(err)
				}
				if _, _, err := srv.ReadFrom(buf); err != nil {
					t.Fatal(err)
				}
			}
			want := uint64(k * (n + 8 + tc.iphdr))
			c := find(t, p, boot, addrPort(cli.LocalAddr()), addrPort(srv.LocalAddr()))
			if c.TxBytes != want || c.TxPackets != k || c.RxPackets != 0 {
				t.Errorf("client flow tx=%d/%d rx=%d, want tx=%d/%d rx=0", c.TxBytes, c.TxPackets, c.RxPackets, want, k)
			}
			if c.Initiator != record.InitiatorLocal || c.Transport != record.TransportUDP {
				t.Errorf("client flow initiator=%d transport=%s", c.Initiator, c.Transport)
			}
			if c.PID != uint32(os.Getpid()) || c.Comm == "" {
				t.Errorf("client flow pid=%d comm=%q, want pid %d", c.PID, c.Comm, os.Getpid())
			}
			if id := probetest.CgroupID(t, probetest.OwnCgroup(t)); c.CgroupID != id {
				t.Errorf("client flow cgroup=%d, want %d", c.CgroupID, id)
			}
			s := find(t, p, boot, addrPort(srv.LocalAddr()), addrPort(cli.LocalAddr()))
			if s.RxBytes != want || s.RxPackets != k || s.Initiator != record.InitiatorRemote {
				t.Errorf("server flow rx=%d/%d initiator=%d, want rx=%d/%d remote", s.RxBytes, s.RxPackets, s.Initiator, want, k)
			}
			if s.FirstSeen.After(s.LastSeen) || time.Since(s.LastSeen) > time.Minute || time.Since(s.LastSeen) < -time.Second {
				t.Errorf("server flow times first=%s last=%s now=%s", s.FirstSeen, s.LastSeen, time.Now())
			}
		})
	}
}

// TestTCPMatchesKernelCounters transfers 4 MiB and compares the flow with
// the kernel's own per-socket TCP_INFO counters: segments out/in must match
// exactly (GSO super-packets counted as their wire segments), and bytes must
// be the payload plus one TCP/IP header per segment.
func TestTCPMatchesKernelCounters(t *testing.T) {
	p, _, boot := attached(t)
	for _, tc := range []struct {
		net, addr string
		hdrMin    uint64 // IP + TCP with the timestamp option
	}{
		{"tcp4", "127.0.0.1:0", 20 + 32},
		{"tcp6", "[::1]:0", 40 + 32},
	} {
		t.Run(tc.net, func(t *testing.T) {
			ln, err := net.Listen(tc.net, tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			const size = 4 << 20
			done := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					done <- -1
					return
				}
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				done <- n
			}()
			cli, err := net.Dial(tc.net, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Write(make([]byte, size)); err != nil {
				t.Fatal(err)
			}
			cli.(*net.TCPConn).CloseWrite()
			if n := <-done; n != size {
				t.Fatalf("server read %d bytes", n)
			}
			time.Sleep(50 * time.Millisecond) // the final ACK of the FIN
			info := tcpInfo(t, cli.(*net.TCPConn))
			local, remote := addrPort(cli.LocalAddr()), addrPort(cli.RemoteAddr())
			f := find(t, p, boot, local, remote)
			cli.Close()

			if f.TxPackets != uint64(info.Segs_out) || f.RxPackets != uint64(info.Segs_in) {
				t.Errorf("packets tx=%d rx=%d, TCP_INFO segs_out=%d segs_in=%d", f.TxPackets, f.RxPackets, info.Segs_out, info.Segs_in)
			}
			// SYN and FIN carry one sequence number but no payload bytes.
			payload := info.Bytes_sent
			lo, hi := payload+f.TxPackets*tc.hdrMin, payload+f.TxPackets*(tc.hdrMin+8)
			if f.TxBytes < lo || f.TxBytes > hi {
				t.Errorf("tx bytes %d outside [%d, %d] (payload %d, %d segments)", f.TxBytes, lo, hi, payload, f.TxPackets)
			}
			if f.TxBytes < size || float64(f.TxBytes) > float64(size)*1.05 {
				t.Errorf("tx bytes %d not within 5%% above the %d transferred", f.TxBytes, size)
			}
			if f.Initiator != record.InitiatorLocal || f.TCPFlags&0x02 == 0 || f.SRTT <= 0 {
				t.Errorf("initiator=%d flags=%#x srtt=%s", f.Initiator, f.TCPFlags, f.SRTT)
			}
		})
	}
}

func tcpInfo(t *testing.T, c *net.TCPConn) *unix.TCPInfo {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var serr error
	raw.Control(func(fd uintptr) { info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if serr != nil {
		t.Fatal(serr)
	}
	return info
}

// TestChildCgroupProcess runs socat in a cgroup of its own: its flow carries
// that cgroup's id and socat's pid and command name.
func TestChildCgroupProcess(t *testing.T) {
	p, root, boot := attached(t)
	if _, err := exec.LookPath("socat"); err != nil {
		privileged.Unsupported(t, "socat (apt-get install socat)")
	}
	dir := filepath.Join(root, fmt.Sprintf("ebpfflow-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })

	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec socat -u - "UDP4-SENDTO:$2"`, "sh", dir, srv.LocalAddr().String())
	cmd.Stdin = strings.NewReader("hello from a pod\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("socat: %v: %s", err, out)
	}
	buf := make([]byte, 64)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, from, err := srv.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	f := find(t, p, boot, addrPort(from), addrPort(srv.LocalAddr()))
	if want := probetest.CgroupID(t, dir); f.CgroupID != want {
		t.Errorf("cgroup id %d, want %d (%s)", f.CgroupID, want, dir)
	}
	if f.PID != uint32(cmd.Process.Pid) || f.Comm != "socat" {
		t.Errorf("pid=%d comm=%q, want %d socat", f.PID, f.Comm, cmd.Process.Pid)
	}
	if f.TxBytes != 17+8+20 || f.TxPackets != 1 {
		t.Errorf("tx %d bytes / %d packets, want 45 / 1", f.TxBytes, f.TxPackets)
	}
}

var _ syscall.Conn = (*net.TCPConn)(nil)
