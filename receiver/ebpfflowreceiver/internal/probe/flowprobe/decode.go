package flowprobe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

func decode(k *flowSockFlowKey, v *flowSockFlowStats, base time.Time) (observed.FlowSample, error) {
	t := observed.Transport(v.Proto)
	if t != observed.TransportTCP && t != observed.TransportUDP {
		return observed.FlowSample{}, fmt.Errorf("flow: protocol %d is not TCP or UDP", v.Proto)
	}
	la, ra := addrs(v)
	local, remote, err := probe.Addrs(v.Family, la, ra)
	if err != nil {
		return observed.FlowSample{}, fmt.Errorf("flow: %w", err)
	}
	if flowFlowInitiator(v.Initiator) > flowFlowInitiatorFLOW_INITIATOR_REMOTE {
		return observed.FlowSample{}, fmt.Errorf("flow: invalid initiator %d", v.Initiator)
	}
	if v.FirstNs == 0 || !probe.ValidStamp(v.FirstNs) || !probe.ValidStamp(v.LastNs) || v.LastNs < v.FirstNs {
		return observed.FlowSample{}, fmt.Errorf("flow: invalid times first=%d last=%d", v.FirstNs, v.LastNs)
	}
	if v.TxBytes < v.TxPackets || v.RxBytes < v.RxPackets {
		return observed.FlowSample{}, errors.New("flow: fewer bytes than packets")
	}
	return observed.FlowSample{
		Cookie:      k.Cookie,
		Transport:   t,
		Local:       netip.AddrPortFrom(local, k.LocalPort),
		Remote:      netip.AddrPortFrom(remote, k.RemotePort),
		CgroupID:    v.CgroupId,
		PID:         v.Pid,
		Comm:        probe.Comm(v.Comm),
		TxBytes:     v.TxBytes,
		TxPackets:   v.TxPackets,
		RxBytes:     v.RxBytes,
		RxPackets:   v.RxPackets,
		FirstSeen:   base.Add(time.Duration(v.FirstNs)),
		LastSeen:    base.Add(time.Duration(v.LastNs)),
		Initiator:   observed.Initiator(v.Initiator),
		TCPFlags:    v.TcpFlags,
		SRTT:        time.Duration(v.SrttUs) * time.Microsecond,
		Retransmits: v.Retrans,
	}, nil
}

// addrs joins the head and tail the kernel stores each address in.
func addrs(v *flowSockFlowStats) (local, remote [16]uint8) {
	copy(local[:4], v.LocalHead[:])
	copy(local[4:], v.LocalTail[:])
	copy(remote[:4], v.RemoteHead[:])
	copy(remote[4:], v.RemoteTail[:])
	return local, remote
}

// flowHash is flow.bpf.c's flow_hash: FNV-1a over the 32-bit words (host
// order, little-endian like the BPF target) of family, protocol and both
// addresses.
func flowHash(family, proto uint8, local, remote [16]uint8) uint32 {
	h := uint32(0x811c9dc5) ^ (uint32(family)<<8 | uint32(proto))
	for _, a := range [2][16]uint8{local, remote} {
		for i := 0; i < 16; i += 4 {
			h = (h ^ binary.LittleEndian.Uint32(a[i:])) * 0x01000193
		}
	}
	return h
}

// encodeKey rebuilds the kernel key of a sample, to delete its entry, at
// probe step 0 (Probe.Delete knows the flows stored at another step).
func encodeKey(s observed.FlowSample) flowSockFlowKey {
	var la, ra [16]uint8
	family := probe.PutAddr(&la, s.Local.Addr())
	probe.PutAddr(&ra, s.Remote.Addr())
	return flowSockFlowKey{
		Cookie:     s.Cookie,
		LocalPort:  s.Local.Port(),
		RemotePort: s.Remote.Port(),
		Hash:       flowHash(family, uint8(s.Transport), la, ra),
	}
}
