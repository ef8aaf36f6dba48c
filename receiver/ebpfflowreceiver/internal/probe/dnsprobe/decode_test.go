package dnsprobe

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/flowprobe"
)

// TestLayout keeps decode's offsets equal to the C struct's.
func TestLayout(t *testing.T) {
	var e flowprobe.DNSEvent
	for name, got := range map[string][2]uintptr{
		"ts":      {unsafe.Offsetof(e.TsNs), offTS},
		"cookie":  {unsafe.Offsetof(e.Cookie), offCookie},
		"cgroup":  {unsafe.Offsetof(e.CgroupId), offCgroup},
		"local":   {unsafe.Offsetof(e.LocalAddr), offLocal},
		"remote":  {unsafe.Offsetof(e.RemoteAddr), offRemote},
		"lport":   {unsafe.Offsetof(e.LocalPort), offLPort},
		"rport":   {unsafe.Offsetof(e.RemotePort), offRPort},
		"seq":     {unsafe.Offsetof(e.Seq), offSeq},
		"len":     {unsafe.Offsetof(e.Len), offLen},
		"cap_len": {unsafe.Offsetof(e.CapLen), offCapLen},
		"family":  {unsafe.Offsetof(e.Family), offFamily},
		"proto":   {unsafe.Offsetof(e.Proto), offProto},
		"egress":  {unsafe.Offsetof(e.Egress), offEgress},
		"size":    {unsafe.Sizeof(e), headerSize},
	} {
		assert.Equal(t, got[1], got[0], name)
	}
}

var boot = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// encode builds a record the way the kernel writes one, in the smallest
// size class that holds the payload.
func encode(p observed.DNSPacket, ns uint64) []byte {
	size := captureSize
	for _, class := range []int{128, 256, 512} {
		if len(p.Payload) <= class {
			size = class
			break
		}
	}
	raw := make([]byte, headerSize+size)
	le := binary.LittleEndian
	le.PutUint64(raw[offTS:], ns)
	le.PutUint64(raw[offCookie:], p.Cookie)
	le.PutUint64(raw[offCgroup:], p.CgroupID)
	var a [16]byte
	family := putAddr(&a, p.Local.Addr())
	copy(raw[offLocal:], a[:])
	putAddr(&a, p.Remote.Addr())
	copy(raw[offRemote:], a[:])
	le.PutUint16(raw[offLPort:], p.Local.Port())
	le.PutUint16(raw[offRPort:], p.Remote.Port())
	le.PutUint32(raw[offSeq:], p.Seq)
	le.PutUint32(raw[offLen:], p.Len)
	le.PutUint16(raw[offCapLen:], uint16(len(p.Payload)))
	raw[offFamily] = family
	raw[offProto] = uint8(p.Transport)
	if p.Egress {
		raw[offEgress] = 1
	}
	copy(raw[headerSize:], p.Payload)
	return raw
}

func putAddr(dst *[16]byte, a netip.Addr) uint8 {
	*dst = [16]byte{}
	if a.Is4() {
		b := a.As4()
		copy(dst[:], b[:])
		return 2
	}
	*dst = a.As16()
	return 10
}

func TestDecodeRoundTrip(t *testing.T) {
	for _, want := range []observed.DNSPacket{
		{Cookie: 7, CgroupID: 9, Egress: true, Transport: observed.TransportUDP,
			Local: netip.MustParseAddrPort("10.0.0.1:40000"), Remote: netip.MustParseAddrPort("10.0.0.2:53"), Len: 3, Payload: []byte{1, 2, 3}},
		{Cookie: 8, Transport: observed.TransportTCP, Seq: 0xfffffff0,
			Local: netip.MustParseAddrPort("[fd00::1]:5000"), Remote: netip.MustParseAddrPort("[fd00::2]:53"), Len: 4000, Payload: make([]byte, captureSize)},
	} {
		want.Time = boot.Add(5 * time.Second)
		var got observed.DNSPacket
		require.NoError(t, decode(encode(want, 5e9), boot, &got))
		assert.Equal(t, want, got)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := observed.DNSPacket{Transport: observed.TransportUDP, Local: netip.MustParseAddrPort("10.0.0.1:1"),
		Remote: netip.MustParseAddrPort("10.0.0.2:53"), Len: 3, Payload: []byte{1, 2, 3}}
	var p observed.DNSPacket
	require.NoError(t, decode(encode(good, 1), boot, &p))
	for name, edit := range map[string]func([]byte) []byte{
		"short":         func(b []byte) []byte { return b[:headerSize-1] },
		"no time":       func(b []byte) []byte { binary.LittleEndian.PutUint64(b[offTS:], 0); return b },
		"capture > len": func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offLen:], 2); return b },
		"capture big":   func(b []byte) []byte { binary.LittleEndian.PutUint16(b[offCapLen:], uint16(captureSize+1)); return b },
		"cut record":    func(b []byte) []byte { return b[:headerSize+2] },
		"family":        func(b []byte) []byte { b[offFamily] = 3; return b },
		"protocol":      func(b []byte) []byte { b[offProto] = 1; return b },
		"direction":     func(b []byte) []byte { b[offEgress] = 2; return b },
	} {
		assert.Error(t, decode(edit(encode(good, 1)), boot, &p), name)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(observed.DNSPacket{Transport: observed.TransportUDP, Local: netip.MustParseAddrPort("10.0.0.1:1"),
		Remote: netip.MustParseAddrPort("10.0.0.2:53"), Len: 1, Payload: []byte{1}}, 1))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p observed.DNSPacket
		if decode(raw, boot, &p) != nil {
			return
		}
		if len(p.Payload) == 0 || len(p.Payload) > captureSize || uint32(len(p.Payload)) > p.Len {
			t.Fatalf("accepted a record with %d captured of %d", len(p.Payload), p.Len)
		}
		if !p.Local.Addr().IsValid() || !p.Remote.Addr().IsValid() {
			t.Fatal("accepted a record without addresses")
		}
	})
}

// BenchmarkDecode decodes one record per op: a 120-byte UDP answer.
func BenchmarkDecode(b *testing.B) {
	raw := encode(observed.DNSPacket{Transport: observed.TransportUDP, Local: netip.MustParseAddrPort("10.0.0.1:40000"),
		Remote: netip.MustParseAddrPort("10.96.0.10:53"), Len: 120, Payload: make([]byte, 120)}, 5e9)
	var p observed.DNSPacket
	b.ReportAllocs()
	for b.Loop() {
		if err := decode(raw, boot, &p); err != nil {
			b.Fatal(err)
		}
	}
}
