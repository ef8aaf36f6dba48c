// Package pdatabuild builds the pdata the receiver emits from the engine's
// reports: network.flow, network.drop and dns.lookup events (logs),
// cumulative metrics and DNS spans, each grouped into one resource per local
// workload. A new kind of record gets its own file beside dns.go: its
// attribute count, its putX and its place in Logs, Metrics or Traces.
//
// Names come from internal/semconv (the contract: docs/telemetry.md);
// the golden files in testdata pin them. Everything is built by hand with
// pdata rather than with mdatagen's builders: ebpfflow.tcp.rtt is a histogram,
// which mdatagen cannot generate for component metrics, and every cumulative
// series carries its own start time (see metrics.go), which a builder-wide
// start time cannot express.
package pdatabuild

import (
	"iter"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/metadata"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// maxAddrCache bounds the formatted-address cache of a Builder.
const maxAddrCache = 4096

// flowAttrCount is the exact number of attributes putFlow and newEvent write
// for f, so each record's attribute slice is allocated once at its size.
func flowAttrCount(f *observed.Flow) int {
	n := 1 + tupleAttrCount(f.Transport, f.Source, f.Dest) + 5 + 1 // event.name, tuple, 4 counters + role, verdict
	if f.Transport == observed.TransportTCP {
		n += 2 // retransmits, resets
		if f.State.String() != "" {
			n++
		}
		if f.CloseCause.String() != "" {
			n++
		}
		if f.SRTT > 0 {
			n++
		}
	}
	if f.Scope != 0 {
		n++
	}
	if f.Protocol != "" {
		n++
	}
	if f.Closed {
		n++
	}
	if !f.Start.IsZero() {
		n++
	}
	if !f.End.IsZero() {
		n++
	}
	if w := f.Remote; w != nil {
		if w.ContainerID != "" {
			n++
		}
		if w.PodUID != "" {
			n++
		}
		if w.PID != 0 {
			n++
		}
		if w.Executable != "" {
			n++
		}
	}
	return n
}

// dropAttrCount is the exact number of attributes putDrop and newEvent write for d.
func dropAttrCount(d *observed.Drop) int {
	n := 1 + 3 + tupleAttrCount(d.Transport, d.Source, d.Dest) // event.name, reason, count, bytes, tuple
	if d.Location != "" {
		n++
	}
	if d.Interface != "" {
		n++
	}
	return n
}

func tupleAttrCount(tr observed.Transport, src, dst netip.AddrPort) int {
	n := 0
	if tr.String() != "" {
		n++
	}
	if src.Addr().IsValid() {
		n += 2 // network.type, source.address
	}
	withPorts := tr == observed.TransportTCP || tr == observed.TransportUDP
	if src.Addr().IsValid() && withPorts {
		n++
	}
	if dst.Addr().IsValid() {
		n++
		if withPorts {
			n++
		}
	}
	return n
}

// Config sets a Builder up; the receiver's config.go fills it.
type Config struct {
	NodeName, HostName string // on every resource when not empty
	ScopeVersion       string // the instrumentation scope's version (the collector's build version)
	// DNSQuestionNameOnMetrics adds dns.question.name to dns.lookup.duration.
	DNSQuestionNameOnMetrics bool
	// SeriesIdleTimeout forgets a cumulative metric series that has not
	// changed for this long (by report time).
	SeriesIdleTimeout time.Duration
	// MaxSeries bounds the cumulative metric series held; increments of
	// new series beyond it are lost and counted.
	MaxSeries int
	// Peers, when set, names the far end of every record in the cluster
	// ({side}.k8s.*) and turns on the workload-edge metrics. Wiring rather
	// than a setting: the receiver passes its cluster view.
	Peers Peers
}

// Builder converts reports into pdata. It holds the cumulative metric
// state, so one Builder serves one receiver; it is not safe for
// concurrent use (the engine delivers reports one at a time), except for the
// counter accessors, which the self-telemetry callbacks read.
type Builder struct {
	cfg Config

	intervalStart pcommon.Timestamp     // end of the previous report: start of new series
	now           pcommon.Timestamp     // time of the report being folded in
	addrs         map[netip.Addr]string // formatted addresses, reused across reports (bounded)
	series        map[seriesKey]*series
	// last is the series each metric touched last: consecutive samples of
	// one series (an HTTP server's requests) skip hashing the whole key.
	// Cleared whenever a series is deleted.
	last [len(metricDefs)]lastSeries
	// groups finds the series of a flow record (see flowGroup). Cleared
	// whenever a series is deleted.
	groups map[flowGroupKey]*flowGroup

	ids *mrand.ChaCha8 // trace and span ids

	// flow.start / flow.end strings: apart, each mostly repeats its
	// second (ends fall in the last interval, starts of a burst together).
	starts, ends stamps

	spanSlot []int32 // Traces' scratch: each span's workload

	live         atomic.Int64
	evictedIdle  atomic.Uint64
	evictedLimit atomic.Uint64
}

// New returns a Builder. start is the start time of the first cumulative
// series (the receiver's start).
func New(start time.Time, cfg Config) *Builder {
	return &Builder{
		cfg:           cfg,
		intervalStart: pcommon.NewTimestampFromTime(start),
		series:        make(map[seriesKey]*series),
		groups:        make(map[flowGroupKey]*flowGroup),
		addrs:         make(map[netip.Addr]string),
	}
}

// Logs returns one network.flow record per flow, one network.drop record
// per drop aggregate and one dns.lookup record per DNS lookup, grouped into one ResourceLogs per local workload in
// order of first appearance. Every record's Timestamp and ObservedTimestamp
// are the report time: the end of the interval its counters cover.
func (t *Builder) Logs(r observed.Report) plog.Logs {
	ld := plog.NewLogs()
	now := pcommon.NewTimestampFromTime(r.Time)
	// Found by cgroup and pid, then compared in full: hashing every string
	// of a workload once per record cost more than the comparison.
	byWorkload := make(map[workloadID]*workloadLogs)
	if len(t.addrs) > maxAddrCache {
		clear(t.addrs) // bounded: a scan of many remote addresses must not pin them all
	}
	records := func(w observed.Workload) plog.LogRecordSlice {
		id := workloadID{w.CgroupID, w.PID}
		head := byWorkload[id]
		for e := head; e != nil; e = e.next {
			if e.w == w {
				return e.s
			}
		}
		rl := ld.ResourceLogs().AppendEmpty()
		t.putResource(rl.Resource().Attributes(), w)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		sl.Scope().SetVersion(t.cfg.ScopeVersion)
		s := sl.LogRecords()
		byWorkload[id] = &workloadLogs{w: w, s: s, next: head}
		return s
	}
	for i := range r.Flows {
		f := &r.Flows[i]
		side, p := t.flowPeer(f, true)
		lr := records(f.Local).AppendEmpty()
		lr.Attributes().EnsureCapacity(flowAttrCount(f) + p.attrCount(side == semconv.SideDestination))
		newEvent(lr, semconv.EventFlow, now)
		t.putFlow(lr.Attributes(), f)
		putSide(lr.Attributes(), side, &p)
	}
	for i := range r.Drops {
		d := &r.Drops[i]
		// A dropped packet may belong to no local socket: both ends are
		// named.
		src := t.peerOf(d.Transport, d.Source, netip.AddrPort{}, d.Time)
		dst := t.peerOf(d.Transport, d.Dest, netip.AddrPort{}, d.Time)
		lr := records(d.Local).AppendEmpty()
		lr.Attributes().EnsureCapacity(dropAttrCount(d) + src.attrCount(false) + dst.attrCount(true))
		newEvent(lr, semconv.EventDrop, now)
		t.putDrop(lr.Attributes(), d)
		putSide(lr.Attributes(), semconv.SideSource, &src)
		putSide(lr.Attributes(), semconv.SideDestination, &dst)
	}
	t.dnsLogs(&r, now, records)
	return ld
}

// LogBatch is the most records LogBatches puts in one Logs. A flush of 10k
// flows built as one Logs held every record at once (13 MB while built and
// exported, which raised the GC's heap goal by as much) and made one export
// request of ~3 MB, near the 4 MiB an OTLP/gRPC receiver accepts by
// default; at 100k flows far beyond it.
const LogBatch = 1024

// LogBatches yields the records of Logs(r) in Logs of at most size records
// each (at least one), in the same order: flows, drops, DNS lookups. Each
// Logs groups its own records by workload, so a workload's resource may
// repeat across them.
func (t *Builder) LogBatches(r observed.Report, size int) iter.Seq[plog.Logs] {
	size = max(size, 1)
	return func(yield func(plog.Logs) bool) {
		flows, drops, dns := r.Flows, r.Drops, r.DNS
		for len(flows)+len(drops)+len(dns) > 0 {
			part := observed.Report{Time: r.Time}
			left := size
			part.Flows, flows = cut(flows, &left)
			part.Drops, drops = cut(drops, &left)
			part.DNS, dns = cut(dns, &left)
			if !yield(t.Logs(part)) {
				return
			}
		}
	}
}

// cut splits the first *left elements (at most) off s and counts them off.
func cut[T any](s []T, left *int) (head, tail []T) {
	n := min(len(s), *left)
	*left -= n
	return s[:n:n], s[n:]
}

type workloadID struct {
	cgroup uint64
	pid    uint32
}

// workloadLogs is the record slice of one workload's resource.
type workloadLogs struct {
	w    observed.Workload
	s    plog.LogRecordSlice
	next *workloadLogs // another workload of the same workloadID
}

func newEvent(lr plog.LogRecord, name string, ts pcommon.Timestamp) {
	lr.SetEventName(name)
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	lr.Attributes().PutStr(semconv.AttrEventName, name)
}

// putResource writes the local workload's identity: what k8sattributes
// associates on (k8s.pod.uid, k8s.pod.ip, container.id) plus the node, and
// service.name so that no backend files the records under unknown_service.
func (t *Builder) putResource(m pcommon.Map, w observed.Workload) {
	m.PutStr(semconv.AttrServiceName, serviceName(&w))
	if w.ContainerID != "" {
		m.PutStr(semconv.AttrContainerID, w.ContainerID)
	}
	if w.PodUID != "" {
		m.PutStr(semconv.AttrPodUID, w.PodUID)
	}
	if w.PodIP.IsValid() {
		m.PutStr(semconv.AttrPodIP, w.PodIP.Unmap().String())
	}
	if t.cfg.NodeName != "" {
		m.PutStr(semconv.AttrNodeName, t.cfg.NodeName)
	}
	if t.cfg.HostName != "" {
		m.PutStr(semconv.AttrHostName, t.cfg.HostName)
	}
	if w.PID != 0 {
		m.PutInt(semconv.AttrProcessPID, int64(w.PID))
	}
	if w.Executable != "" {
		m.PutStr(semconv.AttrProcessExecName, w.Executable)
	}
	if w.CgroupPath != "" {
		m.PutStr(semconv.AttrCgroupPath, w.CgroupPath)
	}
}

// serviceName is "ebpfflow" for the node-wide resource (no workload); the
// workload's name or executable when known; else, for a host cgroup, the last element of its path (a systemd unit such as
// "sshd.service"); else semconv's "unknown_service" (a container none of whose
// processes was seen yet, a packet the kernel dropped before any socket owned
// it), which k8sattributes and a transform can still replace downstream.
func serviceName(w *observed.Workload) string {
	switch {
	case *w == (observed.Workload{}):
		return nodeService
	case w.Service != "":
		return w.Service
	case w.Executable != "":
		return w.Executable
	case w.ContainerID != "" || w.PodUID != "":
		return unknownService
	}
	if i := strings.LastIndexByte(w.CgroupPath, '/'); i >= 0 && i < len(w.CgroupPath)-1 {
		return w.CgroupPath[i+1:]
	}
	return unknownService
}

// unknownService is semconv's service.name when nothing better is known.
const unknownService = "unknown_service"

// nodeService names the node-wide resource (workload-edge metrics, drops
// no socket owned): what it carries is the observer's view of the node, so
// a backend files it under the observer (Prometheus: job="ebpfflow").
const nodeService = "ebpfflow"

func (t *Builder) putFlow(m pcommon.Map, f *observed.Flow) {
	t.putTuple(m, f.Transport, f.Source, f.Dest)
	m.PutInt(semconv.AttrFlowSrcBytes, clampInt(f.SourceBytes))
	m.PutInt(semconv.AttrFlowSrcPackets, clampInt(f.SourcePackets))
	m.PutInt(semconv.AttrFlowDstBytes, clampInt(f.DestBytes))
	m.PutInt(semconv.AttrFlowDstPackets, clampInt(f.DestPackets))
	m.PutStr(semconv.AttrFlowLocalRole, f.LocalRole.String())
	if f.Transport == observed.TransportTCP {
		if s := f.State.String(); s != "" {
			m.PutStr(semconv.AttrConnState, s)
		}
		if c := f.CloseCause.String(); c != "" {
			m.PutStr(semconv.AttrFlowCloseCause, c)
		}
		if f.SRTT > 0 {
			m.PutDouble(semconv.AttrTCPRTT, f.SRTT.Seconds())
		}
		m.PutInt(semconv.AttrTCPRetransmits, int64(f.Retransmits))
		m.PutInt(semconv.AttrTCPResets, int64(f.Resets))
	}
	if f.Dropped {
		m.PutStr(semconv.AttrFlowVerdict, semconv.VerdictDropped)
	} else {
		m.PutStr(semconv.AttrFlowVerdict, semconv.VerdictForwarded)
	}
	if f.Scope != 0 {
		m.PutStr(semconv.AttrDestScope, f.Scope.String())
	}
	if f.Protocol != "" {
		m.PutStr(semconv.AttrProtocolName, f.Protocol)
	}
	if f.Closed {
		m.PutBool(semconv.AttrFlowFinal, true)
	}
	if !f.Start.IsZero() {
		m.PutStr(semconv.AttrFlowStartTime, t.starts.format(f.Start))
	}
	if !f.End.IsZero() {
		m.PutStr(semconv.AttrFlowEndTime, t.ends.format(f.End))
	}
	if f.Remote != nil {
		putPeer(m, peerSide(f.LocalRole), f.Remote)
	}
}

// Attribute keys of a local peer's identity, by side.
var peerKeys = [2]struct{ containerID, podUID, pid, exec string }{
	{semconv.SideSource + "." + semconv.AttrContainerID, semconv.SideSource + "." + semconv.AttrPodUID, semconv.SideSource + "." + semconv.AttrProcessPID, semconv.SideSource + "." + semconv.AttrProcessExecName},
	{semconv.SideDestination + "." + semconv.AttrContainerID, semconv.SideDestination + "." + semconv.AttrPodUID, semconv.SideDestination + "." + semconv.AttrProcessPID, semconv.SideDestination + "." + semconv.AttrProcessExecName},
}

// peerSide is the side ("source" or "destination") of the remote end.
func peerSide(local observed.Role) string {
	if local == observed.RoleServer {
		return semconv.SideSource
	}
	return semconv.SideDestination
}

// putPeer writes the identity of a peer that is itself a workload on this
// node, so both ends of node-local traffic are known without k8sattributes.
func putPeer(m pcommon.Map, side string, w *observed.Workload) {
	k := &peerKeys[1]
	if side == semconv.SideSource {
		k = &peerKeys[0]
	}
	if w.ContainerID != "" {
		m.PutStr(k.containerID, w.ContainerID)
	}
	if w.PodUID != "" {
		m.PutStr(k.podUID, w.PodUID)
	}
	if w.PID != 0 {
		m.PutInt(k.pid, int64(w.PID))
	}
	if w.Executable != "" {
		m.PutStr(k.exec, w.Executable)
	}
}

func (t *Builder) putDrop(m pcommon.Map, d *observed.Drop) {
	m.PutStr(semconv.AttrDropReason, d.Reason)
	m.PutInt(semconv.AttrDropCount, clampInt(d.Count))
	m.PutInt(semconv.AttrDropBytes, clampInt(d.Bytes))
	if d.Location != "" {
		m.PutStr(semconv.AttrDropLocation, d.Location)
	}
	t.putTuple(m, d.Transport, d.Source, d.Dest)
	if d.Interface != "" {
		m.PutStr(semconv.AttrIfName, d.Interface)
	}
}

// putTuple writes the 5-tuple. Ports only exist for TCP and UDP; a drop of a
// packet that could not be parsed has no addresses at all.
func (t *Builder) putTuple(m pcommon.Map, tr observed.Transport, src, dst netip.AddrPort) {
	if s := tr.String(); s != "" {
		m.PutStr(semconv.AttrTransport, s)
	}
	if t := networkType(src.Addr()); t != "" {
		m.PutStr(semconv.AttrNetworkType, t)
	}
	withPorts := tr == observed.TransportTCP || tr == observed.TransportUDP
	if src.Addr().IsValid() {
		m.PutStr(semconv.AttrSrcAddr, t.addrString(src.Addr()))
		if withPorts {
			m.PutInt(semconv.AttrSrcPort, int64(src.Port()))
		}
	}
	if dst.Addr().IsValid() {
		m.PutStr(semconv.AttrDstAddr, t.addrString(dst.Addr()))
		if withPorts {
			m.PutInt(semconv.AttrDstPort, int64(dst.Port()))
		}
	}
}

// addrString formats a (valid) address without its IPv4-mapping, once per
// address: the same pod and service addresses recur in every report.
func (t *Builder) addrString(a netip.Addr) string {
	if s, ok := t.addrs[a]; ok {
		return s
	}
	s := a.Unmap().String()
	t.addrs[a] = s
	return s
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
