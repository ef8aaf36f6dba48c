package flowprobe

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/record"
)

const (
	afInet  = 2
	afInet6 = 10

	// maxBootNs bounds boottime stamps (~146 years) so they fit a Duration.
	maxBootNs = 1 << 62
)

var (
	keySize   = int(unsafe.Sizeof(flowSockFlowKey{}))
	valueSize = int(unsafe.Sizeof(flowSockFlowStats{}))
)

// Decode turns one `flows` map entry (struct sock_flow_key, struct
// sock_flow_stats) into a sample. base is the wall-clock time of
// CLOCK_MONOTONIC zero, to which the kernel's coarse monotonic stamps are added.
func Decode(key, value []byte, base time.Time) (record.FlowSample, error) {
	if len(key) != keySize {
		return record.FlowSample{}, fmt.Errorf("flow key: %d bytes, want %d", len(key), keySize)
	}
	if len(value) != valueSize {
		return record.FlowSample{}, fmt.Errorf("flow value: %d bytes, want %d", len(value), valueSize)
	}
	var k flowSockFlowKey
	var v flowSockFlowStats
	// The generated structs have the kernel's layout: copying is exact.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&k)), keySize), key)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), valueSize), value)
	return decode(&k, &v, base)
}

func decode(k *flowSockFlowKey, v *flowSockFlowStats, base time.Time) (record.FlowSample, error) {
	t := record.Transport(k.Proto)
	if t != record.TransportTCP && t != record.TransportUDP {
		return record.FlowSample{}, fmt.Errorf("flow: protocol %d is not TCP or UDP", k.Proto)
	}
	local, remote, err := addrs(k.Family, k.LocalAddr, k.RemoteAddr)
	if err != nil {
		return record.FlowSample{}, err
	}
	if flowFlowInitiator(v.Initiator) > flowFlowInitiatorFLOW_INITIATOR_REMOTE {
		return record.FlowSample{}, fmt.Errorf("flow: invalid initiator %d", v.Initiator)
	}
	if v.FirstNs == 0 || v.FirstNs > maxBootNs || v.LastNs > maxBootNs || v.LastNs < v.FirstNs {
		return record.FlowSample{}, fmt.Errorf("flow: invalid times first=%d last=%d", v.FirstNs, v.LastNs)
	}
	if v.TxBytes < v.TxPackets || v.RxBytes < v.RxPackets {
		return record.FlowSample{}, errors.New("flow: fewer bytes than packets")
	}
	return record.FlowSample{
		Cookie:      k.Cookie,
		Transport:   t,
		Local:       netip.AddrPortFrom(local, k.LocalPort),
		Remote:      netip.AddrPortFrom(remote, k.RemotePort),
		CgroupID:    v.CgroupId,
		PID:         v.Pid,
		Comm:        comm(v.Comm),
		TxBytes:     v.TxBytes,
		TxPackets:   v.TxPackets,
		RxBytes:     v.RxBytes,
		RxPackets:   v.RxPackets,
		FirstSeen:   base.Add(time.Duration(v.FirstNs)),
		LastSeen:    base.Add(time.Duration(v.LastNs)),
		Initiator:   record.Initiator(v.Initiator),
		TCPFlags:    v.TcpFlags,
		SRTT:        time.Duration(v.SrttUs) * time.Microsecond,
		Retransmits: v.Retrans,
	}, nil
}

// encodeKey rebuilds the kernel key of a sample, to delete its entry.
func encodeKey(s record.FlowSample) flowSockFlowKey {
	k := flowSockFlowKey{
		Cookie:     s.Cookie,
		LocalPort:  s.Local.Port(),
		RemotePort: s.Remote.Port(),
		Proto:      uint8(s.Transport),
	}
	if s.Local.Addr().Is4() {
		k.Family = afInet
		l, r := s.Local.Addr().As4(), s.Remote.Addr().As4()
		copy(k.LocalAddr[:], l[:])
		copy(k.RemoteAddr[:], r[:])
	} else {
		k.Family = afInet6
		k.LocalAddr = s.Local.Addr().As16()
		k.RemoteAddr = s.Remote.Addr().As16()
	}
	return k
}

func addrs(family uint8, l, r [16]uint8) (netip.Addr, netip.Addr, error) {
	switch family {
	case afInet:
		return netip.AddrFrom4([4]byte(l[:4])), netip.AddrFrom4([4]byte(r[:4])), nil
	case afInet6:
		return netip.AddrFrom16(l), netip.AddrFrom16(r), nil
	}
	return netip.Addr{}, netip.Addr{}, fmt.Errorf("flow: invalid address family %d", family)
}

func comm(c [16]int8) string {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), len(c))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
