package flowprobe

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// maxComms bounds the process names a comms holds.
const maxComms = 1024

// comms turns the kernel's process names into strings once: every flow of
// a process carries its name at every snapshot.
type comms map[[16]int8]string

func (c *comms) name(comm [16]int8) string {
	if s, ok := (*c)[comm]; ok {
		return s
	}
	if *c == nil || len(*c) >= maxComms {
		*c = make(comms) // bounded: a fork storm of short-lived names must not pin them all
	}
	s := probe.Comm(comm)
	(*c)[comm] = s
	return s
}

func decode(k *flowSockFlowKey, v *flowSockFlowStats, base time.Time, names *comms) (observed.FlowSample, error) {
	t := observed.Transport(k.Proto)
	if t != observed.TransportTCP && t != observed.TransportUDP {
		return observed.FlowSample{}, fmt.Errorf("flow: protocol %d is not TCP or UDP", k.Proto)
	}
	local, remote, err := probe.Addrs(k.Family, k.LocalAddr, k.RemoteAddr)
	if err != nil {
		return observed.FlowSample{}, fmt.Errorf("flow: %w", err)
	}
	if flowFlowInitiator(v.Initiator) > flowFlowInitiatorFLOW_INITIATOR_REMOTE {
		return observed.FlowSample{}, fmt.Errorf("flow: invalid initiator %d", v.Initiator)
	}
	// Each direction stamps its own latest packet (0: none yet).
	last := max(v.TxLastNs, v.RxLastNs)
	if v.FirstNs == 0 || !probe.ValidStamp(v.FirstNs) || !probe.ValidStamp(last) || last < v.FirstNs {
		return observed.FlowSample{}, fmt.Errorf("flow: invalid times first=%d last=%d", v.FirstNs, last)
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
		Comm:        names.name(v.Comm),
		TxBytes:     v.TxBytes,
		TxPackets:   v.TxPackets,
		RxBytes:     v.RxBytes,
		RxPackets:   v.RxPackets,
		FirstSeen:   base.Add(time.Duration(v.FirstNs)),
		LastSeen:    base.Add(time.Duration(last)),
		Initiator:   observed.Initiator(v.Initiator),
		TCPFlags:    v.TxFlags | v.RxFlags,
		SRTT:        time.Duration(v.SrttUs) * time.Microsecond,
		Retransmits: v.Retrans,
	}, nil
}

// encodeKey rebuilds the kernel key of a sample, to delete its entry.
func encodeKey(s observed.FlowSample) flowSockFlowKey {
	k := flowSockFlowKey{
		Cookie:     s.Cookie,
		LocalPort:  s.Local.Port(),
		RemotePort: s.Remote.Port(),
		Proto:      uint8(s.Transport),
	}
	k.Family = probe.PutAddr(&k.LocalAddr, s.Local.Addr())
	probe.PutAddr(&k.RemoteAddr, s.Remote.Addr())
	return k
}
