// Package observed holds the typed form of what the probes observe and what
// the engine reports. It is pure Go: decoders produce samples, the flow table
// turns samples into per-interval flows and drops, the DNS matcher packets
// into lookups, and pdatabuild turns a Report into pdata.
package observed

import (
	"net/netip"
	"time"
)

// Transport is the L4 protocol number (IPPROTO_*).
type Transport uint8

const (
	TransportTCP    Transport = 6
	TransportUDP    Transport = 17
	TransportICMP   Transport = 1
	TransportICMPv6 Transport = 58
)

// String returns the semconv network.transport value, or "" for protocols
// semconv has no value for (ICMP, …): such records leave the attribute out.
func (t Transport) String() string {
	switch t {
	case TransportTCP:
		return "tcp"
	case TransportUDP:
		return "udp"
	}
	return ""
}

// Initiator says which end opened a flow, as far as the kernel saw it.
type Initiator uint8

const (
	InitiatorUnknown Initiator = iota // flow predates the probe: no SYN / first datagram seen
	InitiatorLocal                    // local socket sent the SYN or the first datagram
	InitiatorRemote                   // remote end sent the SYN or the first datagram
)

// CloseCause says why a TCP connection ended.
type CloseCause uint8

const (
	CloseNone        CloseCause = iota // still open
	CloseFIN                           // orderly shutdown
	CloseRSTSent                       // this end sent a reset
	CloseRSTReceived                   // the peer reset the connection
	CloseTimeout                       // connect or retransmission timed out
	CloseRefused                       // connect answered with RST
)

// String returns the ebpfflow.flow.close_cause value ("" while open).
func (c CloseCause) String() string {
	switch c {
	case CloseFIN:
		return "fin"
	case CloseRSTSent:
		return "rst_sent"
	case CloseRSTReceived:
		return "rst_received"
	case CloseTimeout:
		return "timeout"
	case CloseRefused:
		return "refused"
	}
	return ""
}

// FlowSample is one socket flow as the flow probe's kernel map holds it.
// Counters are cumulative since the kernel first saw the flow.
// A flow is keyed by socket cookie plus the local/remote address pair, so an
// unconnected UDP socket talking to many peers yields one sample per peer.
type FlowSample struct {
	Cookie    uint64
	Transport Transport
	Local     netip.AddrPort
	Remote    netip.AddrPort
	CgroupID  uint64 // cgroup v2 id of the owning socket (0 if unknown)
	PID       uint32 // process that created the socket (0 if unknown)
	Comm      string // its command name

	TxBytes, TxPackets uint64 // local -> remote, IP layer (header + payload), GSO segments counted
	RxBytes, RxPackets uint64 // remote -> local

	FirstSeen, LastSeen time.Time
	Initiator           Initiator
	TCPFlags            uint8         // union of TCP flags seen (FIN=0x01 SYN=0x02 RST=0x04 ...)
	SRTT                time.Duration // smoothed RTT, TCP only (0 if never measured)
	Retransmits         uint32        // tcp_sock total_retrans, TCP only
}

// TCPState mirrors the kernel's TCP_* socket states.
type TCPState uint8

// Kernel TCP states (include/net/tcp_states.h).
const (
	TCPEstablished TCPState = 1 + iota
	TCPSynSent
	TCPSynRecv
	TCPFinWait1
	TCPFinWait2
	TCPTimeWait
	TCPClose
	TCPCloseWait
	TCPLastAck
	TCPListen
	TCPClosing
	TCPNewSynRecv
)

// String returns the semconv network.connection.state value.
func (s TCPState) String() string {
	switch s {
	case TCPEstablished:
		return "established"
	case TCPSynSent:
		return "syn_sent"
	case TCPSynRecv, TCPNewSynRecv:
		return "syn_received"
	case TCPFinWait1:
		return "fin_wait_1"
	case TCPFinWait2:
		return "fin_wait_2"
	case TCPTimeWait:
		return "time_wait"
	case TCPClose:
		return "closed"
	case TCPCloseWait:
		return "close_wait"
	case TCPLastAck:
		return "last_ack"
	case TCPListen:
		return "listen"
	case TCPClosing:
		return "closing"
	}
	return ""
}

// TCPSample is one TCP socket's lifecycle as the tcp probe's kernel map holds it.
type TCPSample struct {
	Cookie                     uint64
	Local                      netip.AddrPort
	Remote                     netip.AddrPort
	CgroupID                   uint64
	PID                        uint32 // process in whose context the connect/listen ran (0 if unknown)
	Comm                       string
	State                      TCPState // last state
	Initiator                  Initiator
	CloseCause                 CloseCause // CloseNone while open
	ResetsSent, ResetsReceived uint32
	Retransmits                uint32 // retransmitted segments (cumulative)
	SRTT                       time.Duration
	OpenedAt, ClosedAt         time.Time // ClosedAt zero while open
}

// DropSample is one (reason, location, packet tuple, interface) drop aggregate.
// Count is cumulative since the kernel first saw this key.
type DropSample struct {
	Reason    uint32 // enum skb_drop_reason value
	Location  uint64 // kernel address that freed the skb
	Transport Transport
	Source    netip.AddrPort // as on the wire
	Dest      netip.AddrPort
	Ifindex   uint32
	Ifname    string
	CgroupID  uint64 // cgroup of skb->sk when the packet had a local socket
	Count     uint64
	Bytes     uint64
	LastSeen  time.Time
}

// DNSPacket is one UDP datagram or TCP segment a local socket sent to port 53
// or received from port 53, as the dns probe captured it: where it went and a
// bounded prefix of its L4 payload. Payload is only valid during the callback
// that delivers the packet; keep a copy of what must outlive it.
type DNSPacket struct {
	Time      time.Time
	Cookie    uint64 // socket cookie of the local (asking) socket
	CgroupID  uint64
	Egress    bool // sent by the local socket (a query); false: received (an answer)
	Transport Transport
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Seq       uint32 // TCP only: sequence number of Payload[0]
	Len       uint32 // L4 payload length on the wire
	Payload   []byte // first min(Len, capture limit) bytes of the L4 payload
}

// HTTPConn is a TCP connection whose bytes the http probe captures, as its
// socket had it at the first call seen on it.
type HTTPConn struct {
	Time     time.Time // the first call
	Cookie   uint64    // socket cookie of the local socket
	PID      uint32    // process of the first call
	Comm     string    // its command name
	CgroupID uint64    // cgroup v2 id of the socket
	Local    netip.AddrPort
	Remote   netip.AddrPort
}
