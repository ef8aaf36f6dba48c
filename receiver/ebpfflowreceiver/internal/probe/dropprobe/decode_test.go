package dropprobe

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// A real `drops` entry read from the kernel on 6.18: three UDP datagrams of
// 100 bytes to 127.0.0.1:5353 dropped by an iptables INPUT rule on lo.
const (
	realKey   = "b857f681ffffffff0c000000010000007f0000010000000000000000000000007f000001000000000000000000000000c3c5e91402110000"
	realValue = "030000000000000080010000000000001650da273902000000000000000000006c6f0000000000000000000000000000"
)

var boot = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func TestDecodeRealEntry(t *testing.T) {
	s, err := decodeRaw(testkit.Unhex(t, realKey), testkit.Unhex(t, realValue), boot)
	if err != nil {
		t.Fatal(err)
	}
	want := observed.DropSample{
		Reason:    12, // NETFILTER_DROP on 6.18
		Location:  0xffffffff81f657b8,
		Transport: observed.TransportUDP,
		Source:    netip.MustParseAddrPort("127.0.0.1:50627"),
		Dest:      netip.MustParseAddrPort("127.0.0.1:5353"),
		Ifindex:   1,
		Ifname:    "lo",
		Count:     3,
		Bytes:     384,
		LastSeen:  boot.Add(0x23927da5016),
	}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	// Delete rebuilds the exact kernel key from the sample.
	if got := testkit.Encode(t, key(s)); hex.EncodeToString(got) != realKey {
		t.Errorf("key(sample) = %x, want %s", got, realKey)
	}
}

func validKey() dropDropKey {
	k := dropDropKey{Location: 0xffffffff81000000, Reason: 3, Ifindex: 2, Family: probe.AFInet6, Proto: 6, Sport: 443, Dport: 50000}
	k.Saddr = netip.MustParseAddr("2001:db8::1").As16()
	k.Daddr = netip.MustParseAddr("::ffff:10.0.0.1").As16() // mapped stays IPv6
	return k
}

func validValue() dropDropValue {
	v := dropDropValue{Count: 2, Bytes: 120, LastSeen: 1e9, CgroupId: 9}
	for i, c := range "eth0" {
		v.Ifname[i] = int8(c)
	}
	return v
}

func TestDecode(t *testing.T) {
	nonIP := dropDropKey{Location: 1, Reason: 2}

	for _, tc := range []struct {
		name   string
		key    func() dropDropKey
		value  func() dropDropValue
		errSub string
		check  func(t *testing.T, s observed.DropSample)
	}{
		{name: "ipv6 tcp", key: validKey, value: validValue, check: func(t *testing.T, s observed.DropSample) {
			if s.Source != netip.MustParseAddrPort("[2001:db8::1]:443") || !s.Dest.Addr().Is6() || s.Dest.Port() != 50000 ||
				s.Transport != observed.TransportTCP || s.Ifname != "eth0" || s.CgroupID != 9 || s.LastSeen != boot.Add(time.Second) {
				t.Errorf("%+v", s)
			}
		}},
		{name: "not ip", key: func() dropDropKey { return nonIP }, value: validValue, check: func(t *testing.T, s observed.DropSample) {
			if s.Source.IsValid() || s.Dest.IsValid() || s.Transport != 0 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "family", key: func() dropDropKey { k := validKey(); k.Family = 3; return k }, value: validValue, errSub: "family"},
		{name: "padding", key: func() dropDropKey { k := validKey(); k.Pad[1] = 1; return k }, value: validValue, errSub: "padding"},
		{name: "tuple without family", key: func() dropDropKey { k := nonIP; k.Sport = 1; return k }, value: validValue, errSub: "family"},
		{name: "ipv4 with trailing bytes", key: func() dropDropKey { k := validKey(); k.Family = probe.AFInet; return k }, value: validValue, errSub: "IPv4"},
		{name: "zero count", key: validKey, value: func() dropDropValue { v := validValue(); v.Count = 0; return v }, errSub: "count"},
		{name: "no time", key: validKey, value: func() dropDropValue { v := validValue(); v.LastSeen = 0; return v }, errSub: "last_seen"},
		{name: "time overflow", key: validKey, value: func() dropDropValue { v := validValue(); v.LastSeen = 1 << 63; return v }, errSub: "last_seen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := decodeRaw(testkit.Encode(t, tc.key()), testkit.Encode(t, tc.value()), boot)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
			if k := key(s); k != tc.key() {
				t.Errorf("key round trip: %+v, want %+v", k, tc.key())
			}
		})
	}
	if _, err := decodeRaw(make([]byte, 3), testkit.Encode(t, validValue()), boot); err == nil {
		t.Error("short key decoded")
	}
	if _, err := decodeRaw(testkit.Encode(t, validKey()), make([]byte, 3), boot); err == nil {
		t.Error("short value decoded")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(testkit.Unhex(f, realKey), testkit.Unhex(f, realValue))
	f.Add(testkit.Encode(f, validKey()), testkit.Encode(f, validValue()))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		s, err := decodeRaw(k, v, boot)
		if err != nil {
			return
		}
		if s.Count == 0 {
			t.Fatal("zero count passed")
		}
		// Whatever decodes must rebuild the very key it came from, or
		// Delete would miss the kernel entry.
		if got := testkit.Encode(t, key(s)); string(got) != string(k) {
			t.Fatalf("key round trip %x != %x", got, k)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	k, v := testkit.Unhex(b, realKey), testkit.Unhex(b, realValue)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRaw(k, v, boot); err != nil {
			b.Fatal(err)
		}
	}
}

// decodeRaw turns one `drops` map entry (struct drop_key, struct drop_value)
// into a sample. boot is the wall-clock time of boot, to which the kernel's
// boottime nanoseconds are added.
func decodeRaw(key, value []byte, boot time.Time) (observed.DropSample, error) {
	var k dropDropKey
	var v dropDropValue
	if len(key) != int(unsafe.Sizeof(k)) {
		return observed.DropSample{}, fmt.Errorf("drop key: %d bytes, want %d", len(key), unsafe.Sizeof(k))
	}
	if len(value) != int(unsafe.Sizeof(v)) {
		return observed.DropSample{}, fmt.Errorf("drop value: %d bytes, want %d", len(value), unsafe.Sizeof(v))
	}
	// The generated structs have the kernel's layout (bpfel, HostLayout, no
	// padding): copying the bytes is exact and avoids reflection.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&k)), unsafe.Sizeof(k)), key)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), unsafe.Sizeof(v)), value)
	return decodeEntry(&k, &v, boot)
}
