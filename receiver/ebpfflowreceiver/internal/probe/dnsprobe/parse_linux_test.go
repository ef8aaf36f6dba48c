package dnsprobe

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// TestParse runs the egress program on hand-built queries (BPF_PROG_TEST_RUN)
// with the cgroup_skb parser the flow probe shares: a query behind IPv6
// extension headers is captured like a plain one, and a later fragment or
// another port is not.
func TestParse(t *testing.T) {
	testkit.RequireRoot(t)
	p, err := Load(Config{RingBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const ethIP, ethIPv6 = 0x0800, 0x86DD
	withPayload := func(l4 []byte, payload string) []byte { return append(l4[:8], payload...) }
	dstOpts := []byte{17, 0, 1, 4, 0, 0, 0, 0}         // destination options (8 B), then UDP
	hopByHop := []byte{60, 0, 1, 4, 0, 0, 0, 0}        // hop-by-hop, then destination options
	laterFrag := []byte{17, 0, 0x05, 0x00, 0, 0, 0, 1} // fragment at offset 1280: no UDP header
	for _, tc := range []struct {
		name      string
		ethertype uint16
		pkt       []byte
		captured  bool
		local     netip.AddrPort
	}{
		{name: "ipv4 udp", ethertype: ethIP, pkt: testkit.IPv4(17, 0, withPayload(testkit.UDP(40001, 53, 0), "query-v4")),
			captured: true, local: netip.AddrPortFrom(testkit.PacketSrc4, 40001)},
		{name: "ipv6 udp", ethertype: ethIPv6, pkt: testkit.IPv6(17, withPayload(testkit.UDP(40002, 53, 0), "query-v6")),
			captured: true, local: netip.AddrPortFrom(testkit.PacketSrc6, 40002)},
		{name: "ipv6 dstopts udp", ethertype: ethIPv6, pkt: testkit.IPv6(60, append(dstOpts, withPayload(testkit.UDP(40003, 53, 0), "query-ext")...)),
			captured: true, local: netip.AddrPortFrom(testkit.PacketSrc6, 40003)},
		{name: "ipv6 hop-by-hop dstopts udp", ethertype: ethIPv6, pkt: testkit.IPv6(0, append(append(hopByHop, dstOpts...), withPayload(testkit.UDP(40004, 53, 0), "query-ext2")...)),
			captured: true, local: netip.AddrPortFrom(testkit.PacketSrc6, 40004)},
		{name: "ipv6 later fragment", ethertype: ethIPv6, pkt: testkit.IPv6(44, append(laterFrag, withPayload(testkit.UDP(40005, 53, 0), "not-udp")...))},
		{name: "other port", ethertype: ethIPv6, pkt: testkit.IPv6(60, append(dstOpts, withPayload(testkit.UDP(40006, 5353, 0), "mdns")...))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, 14, 14+len(tc.pkt))
			binary.BigEndian.PutUint16(data[12:], tc.ethertype)
			data = append(data, tc.pkt...)
			ret, err := p.programs()[0].Run(&ebpf.RunOptions{Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if ret != 1 {
				t.Fatalf("egress returned %d: the probe must never drop", ret)
			}
			got := readRing(t, p)
			if !tc.captured {
				if len(got) != 0 {
					t.Fatalf("captured %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d records, want 1", len(got))
			}
			r := got[0]
			wantPayload := string(tc.pkt[len(tc.pkt)-len(r.Payload):])
			if r.Local != tc.local || r.Remote.Port() != 53 || !r.Egress || r.Transport != observed.TransportUDP ||
				int(r.Len) != len(r.Payload) || string(r.Payload) != wantPayload || r.Len == 0 {
				t.Errorf("record %+v payload %q, want local %v, remote port 53, egress, udp, payload %q", r, r.Payload, tc.local, wantPayload)
			}
		})
	}
	if c, err := p.Counters(); err != nil || c.ParseErrors != 0 || c.RingbufFull != 0 {
		t.Errorf("counters %+v %v", c, err)
	}
}

// readRing returns the records already in the ring buffer (copies).
func readRing(t *testing.T, p *Probe) []observed.DNSPacket {
	t.Helper()
	var out []observed.DNSPacket
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Run(ctx, time.Now(), func(pkt *observed.DNSPacket) {
		c := *pkt
		c.Payload = append([]byte(nil), pkt.Payload...)
		out = append(out, c)
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
