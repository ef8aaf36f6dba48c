package flowprobe

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// frame is one captured TCP frame, as tshark dissects it.
type frame struct {
	srcPort      uint16
	l3Len, l3Hdr uint64 // IP total length (IPv6: 40 + payload length), IP header length
	tcpLen       uint64 // TCP payload bytes
	tcpHdr       uint64
}

// capture records the TCP frames of port on iface (inside netns when not
// empty) with dumpcap until the returned function is called, which then
// dissects them with tshark. dumpcap announces its file before the capture is
// live, so poke is called (it sends a UDP datagram to port across iface)
// until dumpcap counts it.
func capture(t *testing.T, netns, iface string, port uint16, poke func()) func() []frame {
	t.Helper()
	for _, tool := range []string{"dumpcap", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			testkit.Unsupported(t, tool+" (apt-get install tshark)")
		}
	}
	file := filepath.Join(t.TempDir(), "cap.pcapng")
	args := []string{"dumpcap", "-i", iface, "-f", fmt.Sprintf("port %d", port), "-s", "128", "-w", file}
	if netns != "" {
		args = append([]string{"ip", "netns", "exec", netns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// dumpcap rewrites its "Packets: N" count with carriage returns.
	lines := make(chan string, 64)
	go func() {
		s := bufio.NewScanner(stderr)
		s.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			if i := strings.IndexAny(string(data), "\r\n"); i >= 0 {
				return i + 1, data[:i], nil
			}
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		})
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for live := false; !live; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("dumpcap exited before capturing")
			}
			live = strings.HasPrefix(strings.TrimSpace(l), "Packets: ") && !strings.HasSuffix(strings.TrimSpace(l), " 0")
		case <-tick.C:
			poke()
		case <-timeout:
			t.Fatal("dumpcap did not capture within 30s")
		}
	}
	return func() []frame {
		t.Helper()
		time.Sleep(300 * time.Millisecond) // let dumpcap drain its ring
		if os.Getenv("KEEPCAP") != "" {
			exec.Command("cp", file, "/tmp/keep.pcapng").Run()
		}
		cmd.Process.Signal(syscall.SIGINT)
		var tail []string
		for l := range lines {
			tail = append(tail, l)
		}
		cmd.Wait()
		if os.Getenv("KEEPCAP") != "" {
			exec.Command("cp", file, "/tmp/keep.pcapng").Run()
		}
		if m := regexp.MustCompile(`received/dropped on interface .*: (\d+)/(\d+)`).FindStringSubmatch(strings.Join(tail, "\n")); m == nil || m[2] != "0" {
			t.Fatalf("dumpcap lost frames or did not report: %q", tail)
		}
		out, err := exec.Command("tshark", "-r", file, "-Y", "tcp", "-T", "fields", "-E", "separator=,",
			"-e", "tcp.srcport", "-e", "ip.len", "-e", "ip.hdr_len", "-e", "ipv6.plen",
			"-e", "tcp.len", "-e", "tcp.hdr_len").Output()
		if err != nil {
			t.Fatalf("tshark -r: %v", err)
		}
		var frames []frame
		for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			frames = append(frames, parseFrame(t, line))
		}
		return frames
	}
}

// pokeUDP returns a poke for capture: one datagram to addr.
func pokeUDP(t *testing.T, addr netip.AddrPort) func() {
	return func() {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("poke"))
		c.Close()
	}
}

func parseFrame(t *testing.T, line string) frame {
	t.Helper()
	f := strings.Split(line, ",")
	if len(f) != 6 {
		t.Fatalf("tshark line %q", line)
	}
	n := func(s string) uint64 {
		if s == "" {
			return 0
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("tshark line %q: %v", line, err)
		}
		return v
	}
	fr := frame{srcPort: uint16(n(f[0])), l3Len: n(f[1]), l3Hdr: n(f[2]), tcpLen: n(f[4]), tcpHdr: n(f[5])}
	if f[3] != "" { // IPv6
		fr.l3Len, fr.l3Hdr = 40+n(f[3]), 40
	}
	if fr.l3Len == 0 || fr.tcpHdr == 0 {
		t.Fatalf("tshark line %q: no IP/TCP lengths", line)
	}
	return fr
}

// captured sums the frames sent from port: frames, their IP bytes, and the
// IP + TCP header length of the largest (a data segment's, which every
// segment of a GSO super-frame repeats on the wire).
type captured struct{ frames, bytes, segHdr, maxPayload uint64 }

func sent(frames []frame, port uint16) captured {
	var c captured
	for _, f := range frames {
		if f.srcPort != port {
			continue
		}
		c.frames++
		c.bytes += f.l3Len
		if f.tcpLen >= c.maxPayload {
			c.maxPayload = f.tcpLen
			c.segHdr = f.l3Hdr + f.tcpHdr
		}
	}
	return c
}

// wire is what the frames are on a wire of segs segments: each segment
// beyond the captured frames carries its own IP + TCP header.
func (c captured) wire(segs uint64) (packets, bytes uint64) {
	return segs, c.bytes + (segs-c.frames)*c.segHdr
}

// splitAt counts the segments the frames sent from port make when split at
// mss payload bytes: ceil(payload/mss) each, at least one.
func splitAt(frames []frame, port uint16, mss uint64) uint64 {
	var n uint64
	for _, f := range frames {
		if f.srcPort == port {
			n += max(1, (f.tcpLen+mss-1)/mss)
		}
	}
	return n
}
