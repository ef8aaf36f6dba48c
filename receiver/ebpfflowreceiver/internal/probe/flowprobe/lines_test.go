package flowprobe

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestConnOf checks the line identity of an entry against the kernel's
// fold, written out: IPv4 is its one word, IPv6 the xor of four.
func TestConnOf(t *testing.T) {
	k, _ := validKV()
	v4 := binary.NativeEndian.Uint32([]byte{10, 202, 0, 2})
	if got, want := connOf(&k), (conn{42, uint64(v4)<<32 | 40000<<16 | 80}); got != want {
		t.Errorf("ipv4: %+v, want %+v", got, want)
	}
	for i := range 16 {
		k.RemoteAddr[i] = byte(i + 1)
	}
	var fold uint32
	for _, w := range [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}, {13, 14, 15, 16}} {
		fold ^= binary.NativeEndian.Uint32(w)
	}
	if got := connOf(&k); got.peer>>32 != uint64(fold) {
		t.Errorf("ipv6 fold %#x, want %#x", got.peer>>32, fold)
	}
}

// TestAddLine adds lines to a flow entry's sample: counters add up, the
// later stamp and the union of flags win, the TCP state comes from an
// egress line only once it was read there, and a line with fewer bytes
// than packets is refused whole.
func TestAddLine(t *testing.T) {
	k, v := validKV()
	s, err := decode(&k, &v, boot, &comms{})
	if err != nil {
		t.Fatal(err)
	}
	tx := flowFlowLine{Cookie: 42, Bytes: 3000, Packets: 2, LastNs: 5e9, SrttUs: 90, Retrans: 4, TcpTick: 7, Flags: 0x08}
	rx := flowFlowLine{Cookie: 42, Bytes: 900, Packets: 9, LastNs: 1e9, SrttUs: 1, Retrans: 1}
	if addLine(&s, &tx, true, boot) != nil || addLine(&s, &rx, false, boot) != nil {
		t.Fatal("valid lines refused")
	}
	want := s
	want.TxBytes, want.TxPackets, want.RxBytes, want.RxPackets = 4500, 5, 1000, 11
	want.LastSeen, want.TCPFlags = boot.Add(5*time.Second), 0x1b|0x08
	want.SRTT, want.Retransmits = 90*time.Microsecond, 4
	if s != want {
		t.Errorf("got %+v\nwant %+v", s, want)
	}

	noState := flowFlowLine{Cookie: 42, Bytes: 60, Packets: 1, LastNs: 1}
	before := s
	if addLine(&s, &noState, true, boot) != nil || s.SRTT != before.SRTT || s.Retransmits != before.Retransmits || s.LastSeen != before.LastSeen {
		t.Errorf("a line without a TCP state read changed the sample's state or stamp: %+v", s)
	}
	bad := flowFlowLine{Cookie: 42, Bytes: 1, Packets: 2}
	before = s
	if addLine(&s, &bad, false, boot) == nil || s != before {
		t.Errorf("a line with fewer bytes than packets was added: %+v", s)
	}
}
