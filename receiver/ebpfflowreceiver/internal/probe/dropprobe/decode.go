package dropprobe

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

func decodeEntry(k *dropDropKey, v *dropDropValue, boot time.Time) (observed.DropSample, error) {
	if k.Pad != [2]uint8{} {
		return observed.DropSample{}, fmt.Errorf("drop: non-zero key padding %v", k.Pad)
	}
	if v.Count == 0 {
		return observed.DropSample{}, fmt.Errorf("drop: zero count")
	}
	if v.LastSeen == 0 || !probe.ValidStamp(v.LastSeen) {
		return observed.DropSample{}, fmt.Errorf("drop: invalid last_seen %d", v.LastSeen)
	}
	s := observed.DropSample{
		Reason:    k.Reason,
		Location:  k.Location,
		Transport: observed.Transport(k.Proto),
		Ifindex:   k.Ifindex,
		Ifname:    probe.Comm(v.Ifname),
		CgroupID:  v.CgroupId,
		Count:     v.Count,
		Bytes:     v.Bytes,
		LastSeen:  boot.Add(time.Duration(v.LastSeen)),
	}
	// Addresses stay as on the wire: a v4-mapped IPv6 address is an IPv6
	// packet, and Key must rebuild the exact kernel key from the sample.
	switch k.Family {
	case probe.AFInet:
		s.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(k.Saddr[:4])), k.Sport)
		s.Dest = netip.AddrPortFrom(netip.AddrFrom4([4]byte(k.Daddr[:4])), k.Dport)
		if [12]uint8(k.Saddr[4:]) != [12]uint8{} || [12]uint8(k.Daddr[4:]) != [12]uint8{} {
			return observed.DropSample{}, fmt.Errorf("drop: IPv4 key with bytes past the address")
		}
	case probe.AFInet6:
		s.Source = netip.AddrPortFrom(netip.AddrFrom16(k.Saddr), k.Sport)
		s.Dest = netip.AddrPortFrom(netip.AddrFrom16(k.Daddr), k.Dport)
	case 0:
		// Not an IP packet (or its headers were unreadable): no tuple.
		if k.Saddr != [16]uint8{} || k.Daddr != [16]uint8{} || k.Sport != 0 || k.Dport != 0 || k.Proto != 0 {
			return observed.DropSample{}, fmt.Errorf("drop: tuple without address family")
		}
	default:
		return observed.DropSample{}, fmt.Errorf("drop: invalid address family %d", k.Family)
	}
	return s, nil
}

// key rebuilds the kernel map key of a sample Decode produced.
func key(s observed.DropSample) dropDropKey {
	k := dropDropKey{
		Location: s.Location,
		Reason:   s.Reason,
		Ifindex:  s.Ifindex,
		Proto:    uint8(s.Transport),
		Sport:    s.Source.Port(),
		Dport:    s.Dest.Port(),
	}
	switch src, dst := s.Source.Addr(), s.Dest.Addr(); {
	case src.Is4():
		k.Family = probe.AFInet
		a, b := src.As4(), dst.As4()
		copy(k.Saddr[:], a[:])
		copy(k.Daddr[:], b[:])
	case src.Is6():
		k.Family = probe.AFInet6
		k.Saddr, k.Daddr = src.As16(), dst.As16()
	}
	return k
}
