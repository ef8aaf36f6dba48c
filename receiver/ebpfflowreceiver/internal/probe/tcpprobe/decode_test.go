package tcpprobe

import (
	"encoding/binary"
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

// A real `socks` entry read from the kernel on 6.18: an IPv6 client on ::1
// whose peer closed with unread data, so it ended with a reset received.
const (
	realKey   = "0c00000000000000"
	realValue = "01000000000000000c03172dfb0100005465512efb01000000000000000000000000000000000001000000000000000000000000000000016b1400001f0000000000000000000000010000001ce7bfa80a07010374637070726f62652e7465737400000000000000"
)

var boot = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func cookieKey(c uint64) []byte { return binary.NativeEndian.AppendUint64(nil, c) }

func TestDecodeRealEntry(t *testing.T) {
	s, err := decodeRaw(testkit.Unhex(t, realKey), testkit.Unhex(t, realValue), boot)
	if err != nil {
		t.Fatal(err)
	}
	want := observed.TCPSample{
		Cookie:         12,
		Local:          netip.MustParseAddrPort("[::1]:59164"),
		Remote:         netip.MustParseAddrPort("[::1]:43199"),
		CgroupID:       1,
		PID:            5227,
		Comm:           "tcpprobe.test",
		State:          observed.TCPClose,
		Initiator:      observed.InitiatorLocal,
		CloseCause:     observed.CloseRSTReceived,
		ResetsReceived: 1,
		SRTT:           31 * time.Microsecond,
		OpenedAt:       boot.Add(0x1fb2d17030c),
		ClosedAt:       boot.Add(0x1fb2e516554),
	}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func valid() tcpTcpSockInfo {
	v := tcpTcpSockInfo{
		CgroupId: 7, OpenedNs: 1000, Family: probe.AFInet, State: uint8(observed.TCPEstablished),
		Initiator: uint8(tcpTcpInitiatorTCP_INITIATOR_REMOTE), Sport: 80, Dport: 40000, SrttUs: 250,
	}
	copy(v.Saddr[:], []byte{10, 0, 0, 1})
	copy(v.Daddr[:], []byte{10, 0, 0, 2})
	return v
}

func TestDecode(t *testing.T) {
	mapped := valid()
	mapped.Family = probe.AFInet6
	mapped.Saddr = netip.MustParseAddr("::ffff:10.0.0.1").As16()
	mapped.Daddr = netip.MustParseAddr("::ffff:10.0.0.2").As16()

	closedFin := valid()
	closedFin.ClosedNs, closedFin.CloseCause, closedFin.State = 5000, uint8(tcpTcpCloseCauseTCP_CAUSE_FIN), uint8(observed.TCPClose)

	for _, tc := range []struct {
		name   string
		key    []byte
		value  func() tcpTcpSockInfo
		errSub string
		check  func(t *testing.T, s observed.TCPSample)
	}{
		{name: "open ipv4", value: valid, check: func(t *testing.T, s observed.TCPSample) {
			if s.Local != netip.MustParseAddrPort("10.0.0.1:80") || s.Remote != netip.MustParseAddrPort("10.0.0.2:40000") ||
				s.Initiator != observed.InitiatorRemote || s.CloseCause != observed.CloseNone || !s.ClosedAt.IsZero() ||
				s.OpenedAt != boot.Add(1000) || s.SRTT != 250*time.Microsecond || s.CgroupID != 7 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "v4-mapped unmapped", value: func() tcpTcpSockInfo { return mapped }, check: func(t *testing.T, s observed.TCPSample) {
			if !s.Local.Addr().Is4() || s.Local.Addr() != netip.MustParseAddr("10.0.0.1") {
				t.Errorf("local %v, want plain IPv4", s.Local)
			}
		}},
		{name: "closed fin", value: func() tcpTcpSockInfo { return closedFin }, check: func(t *testing.T, s observed.TCPSample) {
			if s.CloseCause != observed.CloseFIN || s.ClosedAt != boot.Add(5000) || s.State != observed.TCPClose {
				t.Errorf("%+v", s)
			}
		}},
		{name: "opened before probe", value: func() tcpTcpSockInfo { v := valid(); v.OpenedNs = 0; return v }, check: func(t *testing.T, s observed.TCPSample) {
			if !s.OpenedAt.IsZero() {
				t.Errorf("opened %v, want zero", s.OpenedAt)
			}
		}},
		{name: "short key", key: []byte{1, 2, 3}, value: valid, errSub: "key"},
		{name: "zero cookie", key: cookieKey(0), value: valid, errSub: "cookie"},
		{name: "state 0", value: func() tcpTcpSockInfo { v := valid(); v.State = 0; return v }, errSub: "state"},
		{name: "state 13", value: func() tcpTcpSockInfo { v := valid(); v.State = 13; return v }, errSub: "state"},
		{name: "family", value: func() tcpTcpSockInfo { v := valid(); v.Family = 1; return v }, errSub: "family"},
		{name: "initiator", value: func() tcpTcpSockInfo { v := valid(); v.Initiator = 3; return v }, errSub: "initiator"},
		{name: "cause", value: func() tcpTcpSockInfo { v := closedFin; v.CloseCause = 6; return v }, errSub: "cause"},
		{name: "cause while open", value: func() tcpTcpSockInfo { v := valid(); v.CloseCause = 1; return v }, errSub: "close"},
		{name: "closed without cause", value: func() tcpTcpSockInfo { v := valid(); v.ClosedNs = 9; return v }, errSub: "close"},
		{name: "closed before opened", value: func() tcpTcpSockInfo { v := closedFin; v.ClosedNs = 10; return v }, errSub: "times"},
		{name: "time overflow", value: func() tcpTcpSockInfo { v := valid(); v.OpenedNs = 1 << 63; return v }, errSub: "times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = cookieKey(42)
			}
			s, err := decodeRaw(key, testkit.Encode(t, tc.value()), boot)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Cookie != 42 {
				t.Errorf("cookie %d", s.Cookie)
			}
			tc.check(t, s)
		})
	}
	if _, err := decodeRaw(cookieKey(1), make([]byte, 3), boot); err == nil {
		t.Error("short value decoded")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(testkit.Unhex(f, realKey), testkit.Unhex(f, realValue))
	f.Add(cookieKey(42), testkit.Encode(f, valid()))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s, err := decodeRaw(key, value, boot)
		if err != nil {
			return
		}
		if s.Cookie == 0 || s.State < observed.TCPEstablished || s.State > observed.TCPNewSynRecv || s.State.String() == "" {
			t.Fatalf("invalid sample passed: %+v", s)
		}
		if (s.CloseCause == observed.CloseNone) != s.ClosedAt.IsZero() {
			t.Fatalf("close cause %v with close time %v", s.CloseCause, s.ClosedAt)
		}
		if !s.Local.Addr().IsValid() || !s.Remote.Addr().IsValid() || s.Local.Addr().Is4() != s.Remote.Addr().Is4() {
			t.Fatalf("addresses %v %v", s.Local, s.Remote)
		}
		if !s.OpenedAt.IsZero() && !s.ClosedAt.IsZero() && s.ClosedAt.Before(s.OpenedAt) {
			t.Fatalf("closed %v before opened %v", s.ClosedAt, s.OpenedAt)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	key, value := testkit.Unhex(b, realKey), testkit.Unhex(b, realValue)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRaw(key, value, boot); err != nil {
			b.Fatal(err)
		}
	}
}

// decodeRaw turns one `socks` map entry (key = socket cookie, value =
// struct tcp_sock_info) into a sample. boot is the wall-clock time of boot,
// to which the kernel's boottime nanoseconds are added.
func decodeRaw(key, value []byte, boot time.Time) (observed.TCPSample, error) {
	if len(key) != 8 {
		return observed.TCPSample{}, fmt.Errorf("tcp key: %d bytes, want 8", len(key))
	}
	var info tcpTcpSockInfo
	if len(value) != int(unsafe.Sizeof(info)) {
		return observed.TCPSample{}, fmt.Errorf("tcp value: %d bytes, want %d", len(value), unsafe.Sizeof(info))
	}
	// The generated struct has the kernel's layout (bpfel, HostLayout):
	// copying the bytes is exact and avoids reflection.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&info)), unsafe.Sizeof(info)), value)
	return decodeInfo(binary.NativeEndian.Uint64(key), &info, boot)
}
