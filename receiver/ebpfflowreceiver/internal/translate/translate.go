// Package translate turns the engine's reports into the pdata the receiver
// emits: network.flow and network.drop events (logs) and cumulative flow
// metrics, each grouped into one resource per local workload.
//
// Names and values are the telemetry contract (shared/design/telemetry.md);
// the golden files in testdata pin them. Everything is built by hand with
// pdata rather than with mdatagen's builders: ebpfflow.tcp.rtt is a histogram,
// which mdatagen cannot generate for component metrics, and every cumulative
// series carries its own start time (see metrics.go), which a builder-wide
// start time cannot express.
package translate // import "github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/translate"

import (
	"net/netip"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/metadata"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/record"
)

// Event names.
const (
	EventFlow = "network.flow"
	EventDrop = "network.drop"
)

// Attribute keys of the contract (semconv where one exists, ebpfflow.* otherwise).
const (
	attrEventName = "event.name" // deprecated in semconv; mirrors EventName for older backends

	attrContainerID     = "container.id"
	attrPodUID          = "k8s.pod.uid"
	attrPodIP           = "k8s.pod.ip"
	attrNodeName        = "k8s.node.name"
	attrHostName        = "host.name"
	attrProcessPID      = "process.pid"
	attrProcessExecName = "process.executable.name"
	attrCgroupPath      = "ebpfflow.cgroup.path"

	attrTransport   = "network.transport"
	attrNetworkType = "network.type"
	attrSrcAddr     = "source.address"
	attrSrcPort     = "source.port"
	attrDstAddr     = "destination.address"
	attrDstPort     = "destination.port"
	attrIfName      = "network.interface.name"
	attrConnState   = "network.connection.state"
	attrIODirection = "network.io.direction"

	attrSrcBytes    = "ebpfflow.flow.source.bytes"
	attrSrcPackets  = "ebpfflow.flow.source.packets"
	attrDstBytes    = "ebpfflow.flow.destination.bytes"
	attrDstPackets  = "ebpfflow.flow.destination.packets"
	attrLocalRole   = "ebpfflow.flow.local_role"
	attrCloseCause  = "ebpfflow.flow.close_cause"
	attrVerdict     = "ebpfflow.flow.verdict"
	attrFinal       = "ebpfflow.flow.final"
	attrStartTime   = "ebpfflow.flow.start_time"
	attrEndTime     = "ebpfflow.flow.end_time"
	attrScope       = "ebpfflow.destination.scope"
	attrRTTMicros   = "ebpfflow.tcp.rtt_us"
	attrRetransmits = "ebpfflow.tcp.retransmits"
	attrResets      = "ebpfflow.tcp.resets"

	attrDropReason   = "ebpfflow.drop.reason"
	attrDropCount    = "ebpfflow.drop.count"
	attrDropBytes    = "ebpfflow.drop.bytes"
	attrDropLocation = "ebpfflow.drop.location"
)

// Upper bounds of a record's attribute count, to size its map once.
const (
	flowAttrCap = 32
	dropAttrCap = 14
)

const (
	verdictForwarded = "forwarded"
	verdictDropped   = "dropped"
)

// Defaults for the bounds of the cumulative metric state.
const (
	DefaultIdleIntervals = 30     // 5 minutes at the default 10 s flush: Prometheus' staleness window
	DefaultMaxSeries     = 100000 // a few tens of MB of state at worst
)

// Translator converts reports into pdata. It holds the cumulative metric
// state, so one Translator serves one receiver; it is not safe for
// concurrent use (the engine delivers reports one at a time), except for the
// counter accessors, which the self-telemetry callbacks read.
type Translator struct {
	nodeName, hostName string
	scopeVersion       string
	idleIntervals      uint64
	maxSeries          int

	intervalStart pcommon.Timestamp // end of the previous report: start of new series
	interval      uint64            // reports seen by Metrics
	series        map[seriesKey]*series

	live         atomic.Int64
	evictedIdle  atomic.Uint64
	evictedLimit atomic.Uint64
}

// Option configures a Translator.
type Option func(*Translator)

// WithScopeVersion sets the instrumentation scope version (the collector's build version).
func WithScopeVersion(v string) Option { return func(t *Translator) { t.scopeVersion = v } }

// WithIdleIntervals sets after how many reports without change a metric series is forgotten.
func WithIdleIntervals(n int) Option {
	return func(t *Translator) {
		if n > 0 {
			t.idleIntervals = uint64(n)
		}
	}
}

// WithMaxSeries caps the number of cumulative metric series held.
func WithMaxSeries(n int) Option {
	return func(t *Translator) {
		if n > 0 {
			t.maxSeries = n
		}
	}
}

// New returns a Translator. start is the start time of the first cumulative
// series (the receiver's start); nodeName and hostName go on every resource
// when not empty.
func New(start time.Time, nodeName, hostName string, opts ...Option) *Translator {
	t := &Translator{
		nodeName:      nodeName,
		hostName:      hostName,
		idleIntervals: DefaultIdleIntervals,
		maxSeries:     DefaultMaxSeries,
		intervalStart: pcommon.NewTimestampFromTime(start),
		series:        make(map[seriesKey]*series),
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Logs returns one network.flow record per flow and one network.drop record
// per drop aggregate, grouped into one ResourceLogs per local workload in
// order of first appearance. Every record's Timestamp and ObservedTimestamp
// are the report time: the end of the interval its counters cover.
func (t *Translator) Logs(r record.Report) plog.Logs {
	ld := plog.NewLogs()
	now := pcommon.NewTimestampFromTime(r.Time)
	byWorkload := make(map[record.Workload]plog.LogRecordSlice)
	records := func(w record.Workload) plog.LogRecordSlice {
		if s, ok := byWorkload[w]; ok {
			return s
		}
		rl := ld.ResourceLogs().AppendEmpty()
		t.putResource(rl.Resource().Attributes(), w)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		sl.Scope().SetVersion(t.scopeVersion)
		s := sl.LogRecords()
		byWorkload[w] = s
		return s
	}
	for i := range r.Flows {
		f := &r.Flows[i]
		lr := records(f.Local).AppendEmpty()
		lr.Attributes().EnsureCapacity(flowAttrCap)
		newEvent(lr, EventFlow, now)
		putFlow(lr.Attributes(), f)
	}
	for i := range r.Drops {
		d := &r.Drops[i]
		lr := records(d.Local).AppendEmpty()
		lr.Attributes().EnsureCapacity(dropAttrCap)
		newEvent(lr, EventDrop, now)
		putDrop(lr.Attributes(), d)
	}
	return ld
}

func newEvent(lr plog.LogRecord, name string, ts pcommon.Timestamp) {
	lr.SetEventName(name)
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	lr.Attributes().PutStr(attrEventName, name)
}

// putResource writes the local workload's identity: what k8sattributes
// associates on (k8s.pod.uid, k8s.pod.ip, container.id) plus the node.
func (t *Translator) putResource(m pcommon.Map, w record.Workload) {
	if w.ContainerID != "" {
		m.PutStr(attrContainerID, w.ContainerID)
	}
	if w.PodUID != "" {
		m.PutStr(attrPodUID, w.PodUID)
	}
	if w.PodIP.IsValid() {
		m.PutStr(attrPodIP, w.PodIP.Unmap().String())
	}
	if t.nodeName != "" {
		m.PutStr(attrNodeName, t.nodeName)
	}
	if t.hostName != "" {
		m.PutStr(attrHostName, t.hostName)
	}
	if w.PID != 0 {
		m.PutInt(attrProcessPID, int64(w.PID))
	}
	if w.Executable != "" {
		m.PutStr(attrProcessExecName, w.Executable)
	}
	if w.CgroupPath != "" {
		m.PutStr(attrCgroupPath, w.CgroupPath)
	}
}

func putFlow(m pcommon.Map, f *record.Flow) {
	putTuple(m, f.Transport, f.Source, f.Dest)
	m.PutInt(attrSrcBytes, clampInt(f.SourceBytes))
	m.PutInt(attrSrcPackets, clampInt(f.SourcePackets))
	m.PutInt(attrDstBytes, clampInt(f.DestBytes))
	m.PutInt(attrDstPackets, clampInt(f.DestPackets))
	m.PutStr(attrLocalRole, f.LocalRole.String())
	if f.Transport == record.TransportTCP {
		if s := f.State.String(); s != "" {
			m.PutStr(attrConnState, s)
		}
		if c := f.CloseCause.String(); c != "" {
			m.PutStr(attrCloseCause, c)
		}
		if f.SRTT > 0 {
			m.PutInt(attrRTTMicros, f.SRTT.Microseconds())
		}
		m.PutInt(attrRetransmits, int64(f.Retransmits))
		m.PutInt(attrResets, int64(f.Resets))
	}
	if f.Dropped {
		m.PutStr(attrVerdict, verdictDropped)
	} else {
		m.PutStr(attrVerdict, verdictForwarded)
	}
	if f.Scope != 0 {
		m.PutStr(attrScope, f.Scope.String())
	}
	if f.Closed {
		m.PutBool(attrFinal, true)
	}
	if !f.Start.IsZero() {
		m.PutStr(attrStartTime, f.Start.UTC().Format(time.RFC3339Nano))
	}
	if !f.End.IsZero() {
		m.PutStr(attrEndTime, f.End.UTC().Format(time.RFC3339Nano))
	}
	if f.Remote != nil {
		putPeer(m, peerSide(f.LocalRole), f.Remote)
	}
}

// peerSide is the side ("source" or "destination") of the remote end.
func peerSide(local record.Role) string {
	if local == record.RoleServer {
		return "source"
	}
	return "destination"
}

// putPeer writes the identity of a peer that is itself a workload on this
// node, so both ends of node-local traffic are known without k8sattributes.
func putPeer(m pcommon.Map, side string, w *record.Workload) {
	if w.ContainerID != "" {
		m.PutStr(side+"."+attrContainerID, w.ContainerID)
	}
	if w.PodUID != "" {
		m.PutStr(side+"."+attrPodUID, w.PodUID)
	}
	if w.PID != 0 {
		m.PutInt(side+"."+attrProcessPID, int64(w.PID))
	}
	if w.Executable != "" {
		m.PutStr(side+"."+attrProcessExecName, w.Executable)
	}
}

func putDrop(m pcommon.Map, d *record.Drop) {
	m.PutStr(attrDropReason, d.Reason)
	m.PutInt(attrDropCount, clampInt(d.Count))
	m.PutInt(attrDropBytes, clampInt(d.Bytes))
	if d.Location != "" {
		m.PutStr(attrDropLocation, d.Location)
	}
	putTuple(m, d.Transport, d.Source, d.Dest)
	if d.Interface != "" {
		m.PutStr(attrIfName, d.Interface)
	}
}

// putTuple writes the 5-tuple. Ports only exist for TCP and UDP; a drop of a
// packet that could not be parsed has no addresses at all.
func putTuple(m pcommon.Map, tr record.Transport, src, dst netip.AddrPort) {
	if tr != 0 {
		m.PutStr(attrTransport, tr.String())
	}
	if t := networkType(src.Addr()); t != "" {
		m.PutStr(attrNetworkType, t)
	}
	withPorts := tr == record.TransportTCP || tr == record.TransportUDP
	if src.Addr().IsValid() {
		m.PutStr(attrSrcAddr, src.Addr().Unmap().String())
		if withPorts {
			m.PutInt(attrSrcPort, int64(src.Port()))
		}
	}
	if dst.Addr().IsValid() {
		m.PutStr(attrDstAddr, dst.Addr().Unmap().String())
		if withPorts {
			m.PutInt(attrDstPort, int64(dst.Port()))
		}
	}
}

func networkType(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return ""
	case a.Unmap().Is4():
		return "ipv4"
	}
	return "ipv6"
}

// clampInt converts a kernel counter to an OTLP int; counters never come
// close to 2^63, but a corrupt one must not turn negative.
func clampInt(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}
