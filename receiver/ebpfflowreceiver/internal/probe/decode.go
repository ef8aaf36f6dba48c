package probe

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"
	"unsafe"
)

// Address families as the kernel stores them.
const (
	AFInet  = 2
	AFInet6 = 10
)

// maxBootNs bounds kernel clock stamps (~146 years) so they fit a Duration.
const maxBootNs = 1 << 62

// Addrs decodes a pair of kernel addresses: IPv4 in the first 4 bytes,
// IPv6 in all 16, as family says.
func Addrs(family uint8, a, b [16]uint8) (netip.Addr, netip.Addr, error) {
	switch family {
	case AFInet:
		return netip.AddrFrom4([4]byte(a[:4])), netip.AddrFrom4([4]byte(b[:4])), nil
	case AFInet6:
		return netip.AddrFrom16(a), netip.AddrFrom16(b), nil
	}
	return netip.Addr{}, netip.Addr{}, fmt.Errorf("invalid address family %d", family)
}

// PutAddr encodes addr the way Addrs decodes it and returns its family.
func PutAddr(dst *[16]uint8, addr netip.Addr) uint8 {
	if addr.Is4() {
		a := addr.As4()
		copy(dst[:], a[:])
		return AFInet
	}
	*dst = addr.As16()
	return AFInet6
}

// Comm decodes a NUL-terminated kernel task name.
func Comm(c [16]int8) string {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), len(c))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// ValidStamp reports whether a kernel clock stamp in ns is plausible.
func ValidStamp(ns uint64) bool { return ns <= maxBootNs }

// WallTime converts a kernel clock stamp to wall time; 0 stays the zero time.
func WallTime(base time.Time, ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return base.Add(time.Duration(ns))
}
