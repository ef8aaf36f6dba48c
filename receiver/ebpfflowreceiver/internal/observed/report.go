package observed

import (
	"net/netip"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
)

// Workload is the local endpoint that owns a socket: the resource a record is
// grouped under, carrying exactly what k8sattributes needs to enrich it.
type Workload struct {
	CgroupID    uint64
	CgroupPath  string     // relative to the cgroup v2 mount ("/kubepods.slice/...")
	ContainerID string     // from a Kubernetes / container runtime cgroup path
	PodUID      string     // from a Kubernetes cgroup path
	PodIP       netip.Addr // the local address when it is not one of the host's own
	PID         uint32     // host processes only (no container)
	Executable  string     // process.executable.name
	// Service is service.name: the workload's name when known, else the
	// executable's (for a container: its main process's, the lowest pid in
	// its cgroup).
	Service string
}

// Role is which end of a connection is on this node.
type Role uint8

const (
	RoleClient Role = iota + 1
	RoleServer
)

func (r Role) String() string {
	if r == RoleServer {
		return "server"
	}
	return "client"
}

// Scope classifies the destination of a flow.
type Scope uint8

const (
	ScopeNode     Scope = iota + 1 // destination address belongs to this node (host or a local pod)
	ScopeCluster                   // destination inside the configured cluster CIDRs
	ScopeExternal                  // anything else
)

func (s Scope) String() string {
	switch s {
	case ScopeNode:
		return "node"
	case ScopeCluster:
		return "cluster"
	}
	return "external"
}

// Flow is one connection's report for one flush interval (or its final report
// when Closed). Source is the initiator, Destination the responder.
type Flow struct {
	Local     Workload
	Remote    *Workload // the peer when it is a workload on this node
	Transport Transport
	Source    netip.AddrPort
	Dest      netip.AddrPort
	LocalRole Role

	SourceBytes, SourcePackets uint64 // source -> destination, this interval
	DestBytes, DestPackets     uint64 // destination -> source, this interval

	State       TCPState   // 0 for UDP
	CloseCause  CloseCause // CloseNone while open
	SRTT        time.Duration
	Retransmits uint32 // segments retransmitted in this interval
	Resets      uint32 // resets sent or received in this interval
	Dropped     bool   // packets of this flow were dropped in this interval
	Scope       Scope
	// Backend is where a connection to a Service address (Dest) really
	// went: the address that answered after the node's DNAT. Zero when Dest
	// is not a Service address or the backend is unknown.
	Backend netip.AddrPort

	Start  time.Time // first packet of the flow
	End    time.Time // last packet seen (or close time)
	Closed bool

	Cookie uint64 // socket cookie of the local socket
	// Protocol is network.protocol.name of the connection's payload when
	// known ("http"), "" otherwise.
	Protocol string
}

// Drop is one (reason, location, 5-tuple, interface) aggregate for one interval.
type Drop struct {
	Local     Workload // zero when no local socket could be attributed
	Reason    string   // SKB_DROP_REASON_* name without the prefix
	Location  string   // kernel symbol ("nf_hook_slow") or hex address when unresolvable
	Transport Transport
	Source    netip.AddrPort
	Dest      netip.AddrPort
	Interface string
	Count     uint64 // packets in this interval
	Bytes     uint64
	Time      time.Time
}

// Report is what the engine emits at each flush, and between flushes for
// HTTP exchanges (Partial).
type Report struct {
	Time  time.Time
	Flows []Flow
	Drops []Drop
	DNS   []DNSLookup
	HTTP  []HTTPExchange
	// Partial: a report of HTTP exchanges between two flushes, which come
	// too many to be held for a whole flush interval. Its exchanges count
	// in the metrics the next full report emits.
	Partial bool
}

// HTTPExchange is one HTTP request a local process sent (RoleClient) or
// served (RoleServer) and its response, or what became of it.
type HTTPExchange struct {
	Local      Workload       // the process's workload (filled by the engine)
	CgroupID   uint64         // cgroup v2 id of the socket
	Comm       string         // command name of the process
	LocalAddr  netip.AddrPort // the local socket's address
	RemoteAddr netip.AddrPort // its peer's
	// Backend is, for a CLIENT exchange to a Service address, the backend
	// that answered (the node's connection tracking); zero otherwise.
	Backend netip.AddrPort
	httpmatch.Exchange
}

// DNSLookup is one DNS query from a local socket and its answer, or its
// timeout. Times are the kernel's: query sent, answer received.
type DNSLookup struct {
	Local     Workload // the asking socket's owner (filled by the engine)
	Cookie    uint64
	CgroupID  uint64
	Transport Transport
	Client    netip.AddrPort // the asking socket
	Server    netip.AddrPort // where the query was sent
	Responder netip.AddrPort // where the answer came from when not Server (zero otherwise)
	Backend   netip.AddrPort // the resolver behind Server when Server is a Service address (zero otherwise)

	ID      uint16
	Name    string   // question name without the trailing dot ("." for the root)
	Type    string   // question type ("A", "AAAA", "SRV", … or "TYPE65" when unnamed)
	RCode   string   // "NOERROR", "NXDOMAIN", "SERVFAIL", … or "TIMEOUT" when unanswered
	Answers []string // A and AAAA answers: the addresses, as `dig +short` prints them
	Records []string // the other answer records' RDATA in presentation form (CNAME, SRV, TXT, …)

	Truncated   bool // the answer had the TC bit set
	Retransmits int  // the same query (socket, id, question) sent again before the answer

	Start    time.Time     // first transmission of the query
	Duration time.Duration // until the answer; the configured timeout when unanswered
}

// Timeout reports whether the lookup got no answer in time.
func (l *DNSLookup) Timeout() bool { return l.RCode == "TIMEOUT" }
