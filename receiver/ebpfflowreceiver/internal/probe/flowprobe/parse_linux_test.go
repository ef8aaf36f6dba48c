package flowprobe

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// Hand-built packets for the egress program through BPF_PROG_TEST_RUN: the
// parser's corner cases (IPv4 options, IPv6 extension headers, truncation,
// non-IP, GSO arithmetic) without having to make a kernel send them.

var (
	src4, dst4 = testkit.PacketSrc4, testkit.PacketDst4
	src6, dst6 = testkit.PacketSrc6, testkit.PacketDst6
)

// skbContext returns a struct __sk_buff for BPF_PROG_TEST_RUN with gso_segs
// and gso_size set; the layout comes from the running kernel's BTF.
func skbContext(t *testing.T, segs, size uint32) []byte {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	var s *btf.Struct
	if err := spec.TypeByName("__sk_buff", &s); err != nil {
		t.Fatal(err)
	}
	ctx := make([]byte, s.Size)
	for _, m := range s.Members {
		switch m.Name {
		case "gso_segs":
			binary.NativeEndian.PutUint32(ctx[m.Offset.Bytes():], segs)
		case "gso_size":
			binary.NativeEndian.PutUint32(ctx[m.Offset.Bytes():], size)
		}
	}
	return ctx
}

func TestParse(t *testing.T) {
	testkit.RequireRoot(t)
	p, err := Load(Config{MaxFlows: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	boot := testkit.BootTime(t)
	const ethIP, ethIPv6, ethARP = 0x0800, 0x86DD, 0x0806
	for _, tc := range []struct {
		name        string
		ethertype   uint16
		pkt         []byte
		segs, size  uint32
		flow        bool // a flow is recorded
		local       netip.AddrPort
		packets     uint64 // its tx packets and bytes
		bytes       uint64
		flags       uint8
		initiator   observed.Initiator
		parseErrors uint64
	}{
		{name: "ipv4 udp", ethertype: ethIP, pkt: testkit.IPv4(17, 0, testkit.UDP(1001, 53, 100)),
			flow: true, local: netip.AddrPortFrom(src4, 1001), packets: 1, bytes: 128, initiator: observed.InitiatorLocal},
		{name: "ipv4 options udp", ethertype: ethIP, pkt: testkit.IPv4(17, 2, testkit.UDP(1002, 53, 10)),
			flow: true, local: netip.AddrPortFrom(src4, 1002), packets: 1, bytes: 28 + 8 + 10, initiator: observed.InitiatorLocal},
		// 3 segments of 1000 B behind 20 B IP + 32 B TCP: 3 x 1052 on the wire.
		// (BPF_PROG_TEST_RUN takes at most a page of packet.)
		{name: "ipv4 tcp gso", ethertype: ethIP, pkt: testkit.IPv4(6, 0, testkit.TCP(1003, 80, 3, 0x18, 3*1000)), segs: 3, size: 1000,
			flow: true, local: netip.AddrPortFrom(src4, 1003), packets: 3, bytes: 3 * 1052, flags: 0x18},
		{name: "ipv4 tcp syn", ethertype: ethIP, pkt: testkit.IPv4(6, 0, testkit.TCP(1004, 80, 5, 0x02, 0)),
			flow: true, local: netip.AddrPortFrom(src4, 1004), packets: 1, bytes: 60, flags: 0x02, initiator: observed.InitiatorLocal},
		// UDP GSO (UDP_SEGMENT): 4 datagrams of 1000 B, each with IPv6 + UDP headers.
		{name: "ipv6 udp gso", ethertype: ethIPv6, pkt: testkit.IPv6(17, testkit.UDP(1005, 443, 4*500)), segs: 4, size: 500,
			flow: true, local: netip.AddrPortFrom(src6, 1005), packets: 4, bytes: 4 * 548, initiator: observed.InitiatorLocal},
		// Destination options (8 B) then a TCP SYN.
		{name: "ipv6 ext tcp", ethertype: ethIPv6, pkt: testkit.IPv6(60, append([]byte{6, 0, 1, 4, 0, 0, 0, 0}, testkit.TCP(1006, 80, 0, 0x02, 0)...)),
			flow: true, local: netip.AddrPortFrom(src6, 1006), packets: 1, bytes: 68, flags: 0x02, initiator: observed.InitiatorLocal},
		{name: "icmp", ethertype: ethIP, pkt: testkit.IPv4(1, 0, make([]byte, 8))},
		{name: "arp", ethertype: ethARP, pkt: make([]byte, 28)},
		// A non-first IPv6 fragment has no transport header.
		{name: "ipv6 later fragment", ethertype: ethIPv6, pkt: testkit.IPv6(44, append([]byte{17, 0, 0x05, 0x00, 0, 0, 0, 1}, make([]byte, 16)...))},
		// Headers cut short, or claiming more than the packet holds.
		{name: "truncated tcp", ethertype: ethIP, pkt: testkit.IPv4(6, 0, testkit.TCP(1007, 80, 0, 0x10, 0))[:20+8], parseErrors: 1},
		{name: "ipv4 options past the end", ethertype: ethIP, pkt: func() []byte {
			b := testkit.IPv4(17, 0, testkit.UDP(1008, 53, 0))
			b[0] = 0x4f // 60 B of IP header in a 28 B packet
			return b
		}(), parseErrors: 1},
		{name: "ipv4 header too short", ethertype: ethIP, pkt: func() []byte {
			b := testkit.IPv4(17, 0, testkit.UDP(1009, 53, 0))
			b[0] = 0x44
			return b
		}(), parseErrors: 1},
		{name: "ipv6 ext past the end", ethertype: ethIPv6, pkt: testkit.IPv6(60, []byte{17, 200, 0, 0, 0, 0, 0, 0}), parseErrors: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, err := p.Snapshot(boot)
			if err != nil {
				t.Fatal(err)
			}
			before, err := p.Counters()
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 14, 14+len(tc.pkt))
			binary.BigEndian.PutUint16(data[12:], tc.ethertype)
			data = append(data, tc.pkt...)
			ret, err := p.objs.FlowEgress.Run(&ebpf.RunOptions{Data: data, Context: skbContext(t, tc.segs, tc.size)})
			if err != nil {
				t.Fatal(err)
			}
			if ret != 1 {
				t.Fatalf("egress returned %d: the probe must never drop", ret)
			}
			after, err := p.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if after.Events-before.Events != 1 || after.ParseErrors-before.ParseErrors != tc.parseErrors {
				t.Errorf("events +%d parse errors +%d, want +1 +%d", after.Events-before.Events, after.ParseErrors-before.ParseErrors, tc.parseErrors)
			}
			samples, err := p.Snapshot(boot)
			if err != nil {
				t.Fatal(err)
			}
			var got []observed.FlowSample
			for _, s := range samples {
				if s.Local == tc.local {
					got = append(got, s)
				}
			}
			if !tc.flow {
				if len(samples) != len(old) {
					t.Fatalf("%d new flows, want none", len(samples)-len(old))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d flows from %s, want 1", len(got), tc.local)
			}
			f := got[0]
			if f.TxPackets != tc.packets || f.TxBytes != tc.bytes || f.RxPackets != 0 || f.TCPFlags != tc.flags || f.Initiator != tc.initiator {
				t.Errorf("flow tx %d pkts/%d B rx %d flags %#x initiator %d, want %d/%d rx 0 flags %#x initiator %d",
					f.TxPackets, f.TxBytes, f.RxPackets, f.TCPFlags, f.Initiator, tc.packets, tc.bytes, tc.flags, tc.initiator)
			}
		})
	}
	if c, _ := p.Counters(); c.DecodeErrors != 0 || c.MapFull != 0 {
		t.Errorf("counters %+v", c)
	}
}
