package flowprobe

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

func decode(k *flowSockFlowKey, v *flowSockFlowStats, base time.Time, names *probe.Comms) (observed.FlowSample, error) {
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
		Comm:        names.Name(v.Comm),
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
