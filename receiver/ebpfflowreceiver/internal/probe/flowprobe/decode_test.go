package flowprobe

import (
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

var boot = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func validKV() (flowSockFlowKey, flowSockFlowStats) {
	k := flowSockFlowKey{Cookie: 42, LocalPort: 40000, RemotePort: 80, Family: probe.AFInet, Proto: 6}
	copy(k.LocalAddr[:], []byte{10, 202, 0, 1})
	copy(k.RemoteAddr[:], []byte{10, 202, 0, 2})
	v := flowSockFlowStats{TxBytes: 1500, TxPackets: 3, RxBytes: 100, RxPackets: 2,
		FirstNs: 1e9, TxLastNs: 2e9, RxLastNs: 15e8, CgroupId: 7, Pid: 99, SrttUs: 250, Retrans: 1, Initiator: 1, TxFlags: 0x1a, RxFlags: 0x13}
	copy(v.Comm[:], []int8{'c', 'u', 'r', 'l'})
	return k, v
}

func TestDecode(t *testing.T) {
	k, v := validKV()
	got, err := decodeRaw(testkit.Encode(t, k), testkit.Encode(t, v), boot)
	if err != nil {
		t.Fatal(err)
	}
	want := observed.FlowSample{
		Cookie: 42, Transport: observed.TransportTCP,
		Local: netip.MustParseAddrPort("10.202.0.1:40000"), Remote: netip.MustParseAddrPort("10.202.0.2:80"),
		CgroupID: 7, PID: 99, Comm: "curl", TxBytes: 1500, TxPackets: 3, RxBytes: 100, RxPackets: 2,
		FirstSeen: boot.Add(time.Second), LastSeen: boot.Add(2 * time.Second),
		Initiator: observed.InitiatorLocal, TCPFlags: 0x1b, SRTT: 250 * time.Microsecond, Retransmits: 1,
	}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if rk := encodeKey(got); rk != k {
		t.Fatalf("encodeKey = %+v, want %+v", rk, k)
	}

	k6 := k
	k6.Family = probe.AFInet6
	k6.LocalAddr = netip.MustParseAddr("fd00:202::1").As16()
	k6.RemoteAddr = netip.MustParseAddr("fd00:202::2").As16()
	got, err = decodeRaw(testkit.Encode(t, k6), testkit.Encode(t, v), boot)
	if err != nil || got.Remote.Addr() != netip.MustParseAddr("fd00:202::2") {
		t.Fatalf("ipv6: %+v %v", got, err)
	}
	if rk := encodeKey(got); rk != k6 {
		t.Fatalf("encodeKey ipv6 = %+v", rk)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*flowSockFlowKey, *flowSockFlowStats)
		want string
	}{
		{"family", func(k *flowSockFlowKey, _ *flowSockFlowStats) { k.Family = 3 }, "family"},
		{"proto", func(k *flowSockFlowKey, _ *flowSockFlowStats) { k.Proto = 1 }, "protocol"},
		{"initiator", func(_ *flowSockFlowKey, v *flowSockFlowStats) { v.Initiator = 9 }, "initiator"},
		{"no first", func(_ *flowSockFlowKey, v *flowSockFlowStats) { v.FirstNs = 0 }, "times"},
		{"last before first", func(_ *flowSockFlowKey, v *flowSockFlowStats) { v.TxLastNs, v.RxLastNs = 1, 0 }, "times"},
		{"bytes < packets", func(_ *flowSockFlowKey, v *flowSockFlowStats) { v.TxBytes = 1 }, "bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, v := validKV()
			tc.mod(&k, &v)
			if _, err := decodeRaw(testkit.Encode(t, k), testkit.Encode(t, v), boot); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	k, v := validKV()
	if _, err := decodeRaw(testkit.Encode(t, k)[1:], testkit.Encode(t, v), boot); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := decodeRaw(testkit.Encode(t, k), append(testkit.Encode(t, v), 0), boot); err == nil {
		t.Fatal("long value accepted")
	}
}

func FuzzDecode(f *testing.F) {
	k, v := validKV()
	f.Add(testkit.Encode(f, k), testkit.Encode(f, v))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s, err := decodeRaw(key, value, boot)
		if err != nil {
			return
		}
		if !s.Local.Addr().IsValid() || s.TxBytes < s.TxPackets || s.LastSeen.Before(s.FirstSeen) {
			t.Fatalf("accepted an inconsistent sample: %+v", s)
		}
		if rk := encodeKey(s); rk.Cookie != s.Cookie || rk.LocalPort != s.Local.Port() {
			t.Fatalf("key does not round-trip: %+v", rk)
		}
	})
}

var (
	keySize   = int(unsafe.Sizeof(flowSockFlowKey{}))
	valueSize = int(unsafe.Sizeof(flowSockFlowStats{}))
)

// decodeRaw turns one `flows` map entry (struct sock_flow_key, struct
// sock_flow_stats) into a sample. base is the wall-clock time of
// CLOCK_MONOTONIC zero, to which the kernel's monotonic stamps are added:
// the boot time, plus the time spent suspended if the machine ever was
// (Probe.Snapshot takes the boot time and adds that itself).
func decodeRaw(key, value []byte, base time.Time) (observed.FlowSample, error) {
	if len(key) != keySize {
		return observed.FlowSample{}, fmt.Errorf("flow key: %d bytes, want %d", len(key), keySize)
	}
	if len(value) != valueSize {
		return observed.FlowSample{}, fmt.Errorf("flow value: %d bytes, want %d", len(value), valueSize)
	}
	var k flowSockFlowKey
	var v flowSockFlowStats
	// The generated structs have the kernel's layout: copying is exact.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&k)), keySize), key)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), valueSize), value)
	var names comms
	return decode(&k, &v, base, &names)
}
