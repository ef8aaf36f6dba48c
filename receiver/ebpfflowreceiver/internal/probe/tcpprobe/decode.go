package tcpprobe

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

func decodeInfo(cookie uint64, v *tcpTcpSockInfo, boot time.Time) (observed.TCPSample, error) {
	if cookie == 0 {
		return observed.TCPSample{}, errors.New("tcp: zero socket cookie")
	}
	if v.State < uint8(observed.TCPEstablished) || v.State > uint8(observed.TCPNewSynRecv) {
		return observed.TCPSample{}, fmt.Errorf("tcp: invalid state %d", v.State)
	}
	if tcpTcpInitiator(v.Initiator) > tcpTcpInitiatorTCP_INITIATOR_REMOTE {
		return observed.TCPSample{}, fmt.Errorf("tcp: invalid initiator %d", v.Initiator)
	}
	cause := tcpTcpCloseCause(v.CloseCause)
	if cause > tcpTcpCloseCauseTCP_CAUSE_REFUSED {
		return observed.TCPSample{}, fmt.Errorf("tcp: invalid close cause %d", v.CloseCause)
	}
	if (v.ClosedNs == 0) != (cause == tcpTcpCloseCauseTCP_CAUSE_NONE) {
		return observed.TCPSample{}, fmt.Errorf("tcp: close cause %d with close time %d", v.CloseCause, v.ClosedNs)
	}
	if !probe.ValidStamp(v.OpenedNs) || !probe.ValidStamp(v.ClosedNs) ||
		(v.OpenedNs != 0 && v.ClosedNs != 0 && v.ClosedNs < v.OpenedNs) {
		return observed.TCPSample{}, fmt.Errorf("tcp: invalid times opened=%d closed=%d", v.OpenedNs, v.ClosedNs)
	}
	local, remote, err := tuple(v.Family, v.Saddr, v.Daddr)
	if err != nil {
		return observed.TCPSample{}, err
	}
	return observed.TCPSample{
		Cookie:         cookie,
		Local:          netip.AddrPortFrom(local, v.Sport),
		Remote:         netip.AddrPortFrom(remote, v.Dport),
		CgroupID:       v.CgroupId,
		PID:            v.Pid,
		Comm:           probe.Comm(v.Comm),
		State:          observed.TCPState(v.State),
		Initiator:      initiator(tcpTcpInitiator(v.Initiator)),
		CloseCause:     closeCause(cause),
		ResetsSent:     v.ResetsSent,
		ResetsReceived: v.ResetsReceived,
		Retransmits:    v.Retransmits,
		SRTT:           time.Duration(v.SrttUs) * time.Microsecond,
		OpenedAt:       probe.WallTime(boot, v.OpenedNs),
		ClosedAt:       probe.WallTime(boot, v.ClosedNs),
	}, nil
}

// tuple returns the local and remote address. A dual-stack AF_INET6 socket
// talking IPv4 stores v4-mapped addresses; they are unmapped so the sample
// matches the IPv4 packets the flow and drop probes see.
func tuple(family uint8, saddr, daddr [16]uint8) (netip.Addr, netip.Addr, error) {
	switch family {
	case probe.AFInet:
		return netip.AddrFrom4([4]byte(saddr[:4])), netip.AddrFrom4([4]byte(daddr[:4])), nil
	case probe.AFInet6:
		l, r := netip.AddrFrom16(saddr), netip.AddrFrom16(daddr)
		if (l.Is4In6() || l.IsUnspecified()) && (r.Is4In6() || r.IsUnspecified()) && (l.Is4In6() || r.Is4In6()) {
			// IPv4 traffic; a side not known yet is 0.0.0.0, not ::.
			return netip.AddrFrom4([4]byte(saddr[12:])), netip.AddrFrom4([4]byte(daddr[12:])), nil
		}
		if l.Is4In6() || r.Is4In6() {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("tcp: v4-mapped address paired with IPv6 (%v, %v)", l, r)
		}
		return l, r, nil
	}
	return netip.Addr{}, netip.Addr{}, fmt.Errorf("tcp: invalid address family %d", family)
}

func initiator(i tcpTcpInitiator) observed.Initiator {
	switch i {
	case tcpTcpInitiatorTCP_INITIATOR_LOCAL:
		return observed.InitiatorLocal
	case tcpTcpInitiatorTCP_INITIATOR_REMOTE:
		return observed.InitiatorRemote
	}
	return observed.InitiatorUnknown
}

func closeCause(c tcpTcpCloseCause) observed.CloseCause {
	switch c {
	case tcpTcpCloseCauseTCP_CAUSE_FIN:
		return observed.CloseFIN
	case tcpTcpCloseCauseTCP_CAUSE_RST_SENT:
		return observed.CloseRSTSent
	case tcpTcpCloseCauseTCP_CAUSE_RST_RECEIVED:
		return observed.CloseRSTReceived
	case tcpTcpCloseCauseTCP_CAUSE_TIMEOUT:
		return observed.CloseTimeout
	case tcpTcpCloseCauseTCP_CAUSE_REFUSED:
		return observed.CloseRefused
	}
	return observed.CloseNone
}
