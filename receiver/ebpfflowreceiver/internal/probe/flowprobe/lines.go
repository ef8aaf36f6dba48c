package flowprobe

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// A connected TCP socket counts its packets in its own line of tx_lines and
// rx_lines (bpf/flow/flow.h: struct flow_line), indexed by its cookie's low
// bits, once it holds that line; its flow entry keeps the flow's identity
// and what was counted before (or while another socket held the line).
// These are the line markers of flow.h.
const (
	lineDead = uint64(1) << 63 // released by user space: never taken again by its socket
	lineBusy = ^uint64(0) >> 1 // being claimed by a packet
)

// conn names the connection a line counts: its socket and its peer.
type conn struct{ cookie, peer uint64 }

// connOf is the line identity of a flow entry's key, as the kernel folds it:
// the remote address's four 32-bit words (as the host reads them) xored,
// then the local and remote ports.
func connOf(k *flowSockFlowKey) conn {
	var fold uint32
	for i := 0; i < 16; i += 4 {
		fold ^= binary.NativeEndian.Uint32(k.RemoteAddr[i:])
	}
	return conn{k.Cookie, uint64(fold)<<32 | uint64(k.LocalPort)<<16 | uint64(k.RemotePort)}
}

// errLine is a line whose counters cannot be a socket's.
var errLine = errors.New("flow line: fewer bytes than packets, or an invalid time")

// addLine adds one direction's line to the sample of its flow.
func addLine(s *observed.FlowSample, ln *flowFlowLine, egress bool, base time.Time) error {
	if ln.Bytes < ln.Packets || !probe.ValidStamp(ln.LastNs) {
		return errLine
	}
	if egress {
		s.TxBytes += ln.Bytes
		s.TxPackets += ln.Packets
		if ln.TcpTick != 0 { // the line's TCP state is newer than the entry's
			s.SRTT = time.Duration(ln.SrttUs) * time.Microsecond
			s.Retransmits = ln.Retrans
		}
	} else {
		s.RxBytes += ln.Bytes
		s.RxPackets += ln.Packets
	}
	if ln.LastNs != 0 {
		if t := base.Add(time.Duration(ln.LastNs)); t.After(s.LastSeen) {
			s.LastSeen = t
		}
	}
	s.TCPFlags |= ln.Flags
	return nil
}
