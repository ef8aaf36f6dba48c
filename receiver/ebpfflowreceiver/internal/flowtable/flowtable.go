// Package flowtable turns the probes' cumulative kernel samples into
// per-interval records. Each flush hands it everything the flow, tcp and drop
// maps hold; it joins flows with their TCP socket by cookie, computes deltas,
// decides who initiated each flow, marks flows whose packets were dropped,
// classifies the destination, emits exactly one final record per connection,
// and says which kernel entries to delete.
//
// It is pure Go and not safe for concurrent use: the engine calls Update from
// its single flush goroutine.
package flowtable

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// Config wires the table to identity, symbol and address lookups. Any nil
// func has a plain fallback, so a zero Config works (tests, degraded runs).
type Config struct {
	// Identity resolves the local socket owner. Called once per new flow.
	Identity func(cgroupID uint64, pid uint32, comm string, local netip.Addr) observed.Workload
	// Symbol names the kernel function at a drop location.
	Symbol func(addr uint64) string
	// ReasonName names an enum skb_drop_reason value.
	ReasonName func(reason uint32) string
	// IsNodeAddr reports addresses of the host network namespace.
	IsNodeAddr   func(netip.Addr) bool
	ClusterCIDRs []netip.Prefix
	// IdleIntervals is how many consecutive flushes without traffic expire a
	// flow that has no open TCP socket behind it (UDP, or TCP the tcp probe
	// does not track). The engine derives it from the receiver's flows.idle_timeout.
	IdleIntervals int
}

// Result is one Update's output: the report, and the kernel entries the
// engine must delete (their connection is over, or they went idle).
type Result struct {
	Report      observed.Report
	DeleteFlows []observed.FlowSample
	DeleteTCP   []uint64 // socket cookies
	DeleteDrops []observed.DropSample
	// Evicted counts flows that disappeared from the kernel map (LRU
	// eviction) before they were closed or expired: their last traffic is lost.
	Evicted uint64
}

// clockSlack absorbs the jitter of boot-time-to-wall-clock conversion
// between snapshots: the same kernel timestamp may decode a few µs apart.
const clockSlack = 10 * time.Millisecond

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

type flowKey struct {
	cookie    uint64
	transport observed.Transport
	local     netip.AddrPort
	remote    netip.AddrPort
}

type tupleKey struct {
	transport     observed.Transport
	local, remote netip.AddrPort
}

type dropKey struct {
	reason    uint32
	location  uint64
	transport observed.Transport
	src, dst  netip.AddrPort
	ifindex   uint32
}

// flow is one kernel flow entry as tracked across flushes.
type flow struct {
	key  flowKey
	last observed.FlowSample // last cumulative sample

	// Deltas accumulated for the current interval.
	txBytes, txPackets, rxBytes, rxPackets uint64
	flowRetransBase                        uint32 // tcp_sock total_retrans already reported
	dropped                                bool

	init     observed.Initiator // sticky: survives an entry recreated without one
	start    time.Time          // first packet, including a folded handshake
	seen     uint64             // generation of the last snapshot holding it
	idle     int                // consecutive flushes without activity
	wl       *observed.Workload // immutable once set; shared as Flow.Remote of peers
	sameNext *flow              // next flow with the same tuple (listener + child cookies)
	shared   bool               // the tuple had another cookie: a handshake candidate
	// handshake marks an entry keyed by a listening socket's cookie: the
	// kernel accounts SYN, SYN-ACK and the handshake ACK to the listener, the
	// rest to the accepted child. It is folded into the child, never reported
	// on its own unless no child shows up.
	handshake bool
	removed   bool
	sock      *sock // the TCP socket of the cookie in the current Update, if any
}

// sock is one TCP socket from the tcp probe.
type sock struct {
	s                       observed.TCPSample
	seen                    uint64
	flowSeen                uint64 // generation in which a flow with this cookie was seen
	retransBase, resetsBase uint32 // already reported
}

func (k *sock) closed() bool {
	return k.s.CloseCause != observed.CloseNone || k.s.State == observed.TCPClose
}

type drop struct {
	count, bytes uint64
	idle         int
	seen         uint64
}

// localAddr counts the flows using an address as their local address; pod
// remembers a workload that owns it as a pod IP.
type localAddr struct {
	refs int
	pod  *observed.Workload
	// until is the generation up to which an address without flows is
	// still known: a peer pod's record often comes a flush after its
	// own flow closed.
	until uint64
}

// Table is the user-space flow table. Create it with New.
type Table struct {
	cfg     Config
	idleMax int
	gen     uint64

	flows  map[flowKey]*flow
	tuples map[tupleKey]*flow
	socks  map[uint64]*sock
	drops  map[dropKey]*drop
	addrs  map[netip.Addr]*localAddr
	// tombs holds cookies of TCP sockets already reported closed, with the
	// generation they were last seen: late kernel entries for them (a packet
	// after close, a failed delete) are deleted again, never re-reported.
	tombs map[uint64]uint64

	evicted   uint64
	cands     []*flow // handshake candidates of the current Update
	doomed    []*flow // flows to remove once the current Update has emitted
	lastFlows int     // capacity hints for the next report
	lastDrops int
	podsDirty bool
}

// New returns an empty table.
func New(cfg Config) *Table {
	return &Table{
		cfg:     cfg,
		idleMax: max(cfg.IdleIntervals, 1),
		flows:   make(map[flowKey]*flow),
		tuples:  make(map[tupleKey]*flow),
		socks:   make(map[uint64]*sock),
		drops:   make(map[dropKey]*drop),
		addrs:   make(map[netip.Addr]*localAddr),
		tombs:   make(map[uint64]uint64),
	}
}

// Active is the number of flows tracked.
func (t *Table) Active() int { return len(t.flows) }

// Evicted is the cumulative number of flows lost to kernel map eviction.
func (t *Table) Evicted() uint64 { return t.evicted }

// Batches hands over one flush's samples of a map, a batch at a time (a
// batch is valid only during the call to each), and returns the read's
// error. A nil Batches has no samples.
type Batches[S any] func(each func([]S)) error

// All hands over samples held whole, in one batch.
func All[S any](samples []S) Batches[S] {
	return func(each func([]S)) error {
		each(samples)
		return nil
	}
}

// Update folds one flush's cumulative samples into the table. Read the TCP
// map before the flow map: then every packet of a socket reported closed is
// already in its flow sample, and the final record carries it.
//
// A probe that is disabled or failed passes nil. A failed read must never
// look like eviction: the engine skips the flush when the TCP or drop map
// cannot be read, and UpdateBatches stops one whose flow read fails
// (counters are cumulative: the next Update catches up).
func (t *Table) Update(now time.Time, flows []observed.FlowSample, tcp []observed.TCPSample, drops []observed.DropSample) Result {
	res, _ := t.UpdateBatches(now, All(flows), All(tcp), drops)
	return res
}

// UpdateBatches is Update with the TCP sockets and then the flows folded in
// as they are read, so that a flush never holds every sample of the node at
// once (a flow sample is 216 B: at 100k flows the two snapshots were half of
// the heap). If a read fails, what it folded stays (counters are
// cumulative: the next flush catches up and nothing counts twice) but the
// flush reports nothing, ages nothing and infers no eviction: it returns the
// error and an empty Result.
func (t *Table) UpdateBatches(now time.Time, flows Batches[observed.FlowSample], tcp Batches[observed.TCPSample], drops []observed.DropSample) (Result, error) {
	t.gen++
	if t.podsDirty {
		t.refreshPods()
	}
	res := Result{Report: observed.Report{Time: now}}
	if t.lastFlows > 0 {
		res.Report.Flows = make([]observed.Flow, 0, t.lastFlows+t.lastFlows/8)
	}
	if t.lastDrops > 0 {
		res.Report.Drops = make([]observed.Drop, 0, t.lastDrops+t.lastDrops/8)
	}

	if tcp != nil {
		err := tcp(func(batch []observed.TCPSample) {
			for i := range batch {
				t.updateSock(&batch[i], &res)
			}
		})
		if err != nil {
			return Result{Report: observed.Report{Time: now}}, err
		}
	}
	if flows != nil {
		err := flows(func(batch []observed.FlowSample) {
			for i := range batch {
				t.updateFlow(&batch[i], &res)
			}
		})
		if err != nil {
			clear(t.cands)
			t.cands = t.cands[:0]
			return Result{Report: observed.Report{Time: now}}, err
		}
	}
	t.foldHandshakes(&res)
	for i := range drops {
		t.updateDrop(now, &drops[i], &res)
	}
	t.emitFlows(&res)
	t.emitSockets(&res)
	// Removed only now, so that every record of this flush still finds its
	// peer (Remote) and the local addresses (Scope).
	for _, f := range t.doomed {
		t.removeFlow(f)
	}
	clear(t.doomed)
	t.doomed = t.doomed[:0]
	t.sweepAddrs()
	t.expireTombs()
	for k, d := range t.drops {
		if d.seen != t.gen {
			delete(t.drops, k) // gone from the kernel map
		}
	}

	t.lastFlows = len(res.Report.Flows)
	t.lastDrops = len(res.Report.Drops)
	return res, nil
}

func (t *Table) updateSock(s *observed.TCPSample, res *Result) {
	if t.tombstoned(s.Cookie) {
		res.DeleteTCP = append(res.DeleteTCP, s.Cookie)
		return
	}
	k := t.socks[s.Cookie]
	if k == nil {
		k = &sock{}
		t.socks[s.Cookie] = k
	} else if s.Retransmits < k.s.Retransmits || s.ResetsSent+s.ResetsReceived < k.s.ResetsSent+k.s.ResetsReceived ||
		(!k.s.OpenedAt.IsZero() && !s.OpenedAt.IsZero() && absDuration(s.OpenedAt.Sub(k.s.OpenedAt)) > clockSlack) {
		// The kernel entry was recreated: count from zero again.
		k.retransBase, k.resetsBase = 0, 0
	}
	k.s = *s
	k.seen = t.gen
}

func (t *Table) updateFlow(s *observed.FlowSample, res *Result) {
	key := flowKey{cookie: s.Cookie, transport: s.Transport, local: s.Local, remote: s.Remote}
	if s.Transport == observed.TransportTCP && t.tombstoned(s.Cookie) {
		// Left over from a reported close (or a closed listener's pending
		// handshake): delete, never report, and do not count as eviction.
		if f := t.flows[key]; f != nil {
			t.removeFlow(f)
		}
		res.DeleteFlows = append(res.DeleteFlows, *s)
		return
	}
	f := t.flows[key]
	switch {
	case f == nil:
		f = t.newFlow(key, s)
		f.txBytes, f.txPackets, f.rxBytes, f.rxPackets = s.TxBytes, s.TxPackets, s.RxBytes, s.RxPackets
	case s.TxBytes < f.last.TxBytes || s.RxBytes < f.last.RxBytes ||
		s.TxPackets < f.last.TxPackets || s.RxPackets < f.last.RxPackets ||
		(!f.last.LastSeen.IsZero() && s.FirstSeen.Sub(f.last.LastSeen) > clockSlack):
		// Counters went backwards, or the entry's first packet came after
		// the last one we saw: the LRU evicted it and a later packet
		// recreated it. What happened in between is lost.
		t.evicted++
		res.Evicted++
		f.txBytes += s.TxBytes
		f.txPackets += s.TxPackets
		f.rxBytes += s.RxBytes
		f.rxPackets += s.RxPackets
		f.flowRetransBase = 0
		f.start = s.FirstSeen
	default:
		f.txBytes += s.TxBytes - f.last.TxBytes
		f.txPackets += s.TxPackets - f.last.TxPackets
		f.rxBytes += s.RxBytes - f.last.RxBytes
		f.rxPackets += s.RxPackets - f.last.RxPackets
	}
	if s.Retransmits < f.flowRetransBase {
		f.flowRetransBase = 0
	}
	if f.init == observed.InitiatorUnknown {
		f.init = s.Initiator
	}
	f.last = *s
	f.seen = t.gen
	f.sock = nil
	if s.Transport == observed.TransportTCP {
		if k := t.socks[s.Cookie]; k != nil && k.seen == t.gen {
			f.sock = k
			if k.s.State == observed.TCPListen {
				f.handshake = true
			}
		}
		if f.handshake || f.shared {
			t.cands = append(t.cands, f)
		}
	}
}

// foldHandshakes moves each listener entry's counters into the accepted
// socket's entry of the same tuple: one connection, one flow. Without the
// tcp probe a listener entry is recognised by pattern: it saw the SYN
// (initiator remote) and a sibling cookie carries the rest.
func (t *Table) foldHandshakes(res *Result) {
	for _, c := range t.cands {
		if c.removed {
			continue
		}
		head := t.tuples[tupleKey{transport: c.key.transport, local: c.key.local, remote: c.key.remote}]
		var child *flow
		for p := head; p != nil; p = p.sameNext {
			if !p.handshake && p.init != observed.InitiatorRemote {
				child = p
				break
			}
		}
		if child == nil {
			continue // pending, or ordinary flows
		}
		for p := head; p != nil; {
			next := p.sameNext
			if p.key.cookie != child.key.cookie && (p.handshake || p.init == observed.InitiatorRemote) {
				t.fold(p, child, res)
			}
			p = next
		}
	}
	clear(t.cands)
	t.cands = t.cands[:0]
}

// fold moves listener entry l into the accepted socket's entry.
func (t *Table) fold(l, child *flow, res *Result) {
	child.txBytes += l.txBytes
	child.txPackets += l.txPackets
	child.rxBytes += l.rxBytes
	child.rxPackets += l.rxPackets
	child.dropped = child.dropped || l.dropped
	child.init = observed.InitiatorRemote // the listener saw the SYN arrive
	if !l.start.IsZero() && (child.start.IsZero() || l.start.Before(child.start)) {
		child.start = l.start
	}
	// Accepted sockets are born in softirq with no owner: the listener's
	// process owns them (a host process's resource; a container's
	// service.name when none of its processes was seen yet).
	if child.last.PID == 0 && l.last.PID != 0 && child.wl.Service == "" {
		wl := t.identity(child.last.CgroupID, l.last.PID, l.last.Comm, child.key.local.Addr())
		child.wl = &wl
	}
	res.DeleteFlows = append(res.DeleteFlows, l.last)
	t.removeFlow(l)
}

func (t *Table) newFlow(key flowKey, s *observed.FlowSample) *flow {
	f := &flow{key: key, init: s.Initiator, start: s.FirstSeen}
	cg, pid, comm := s.CgroupID, s.PID, s.Comm
	if k := t.socks[s.Cookie]; k != nil && s.Transport == observed.TransportTCP && k.seen == t.gen {
		if cg == 0 {
			cg = k.s.CgroupID
		}
		if pid == 0 {
			pid, comm = k.s.PID, k.s.Comm
		}
	}
	wl := t.identity(cg, pid, comm, s.Local.Addr())
	f.wl = &wl
	t.flows[key] = f

	tk := tupleKey{transport: key.transport, local: key.local, remote: key.remote}
	f.sameNext = t.tuples[tk]
	t.tuples[tk] = f
	if f.sameNext != nil {
		for p := f; p != nil; p = p.sameNext {
			p.shared = true
		}
	}

	a := t.addrs[key.local.Addr()]
	if a == nil {
		a = &localAddr{}
		t.addrs[key.local.Addr()] = a
	}
	if a.refs == 0 {
		a.pod = nil // lingering from gone flows: the new owner decides
	}
	a.refs++
	if a.pod == nil && wl.PodIP.IsValid() {
		a.pod = f.wl
	}
	return f
}

func (t *Table) removeFlow(f *flow) {
	f.removed = true
	delete(t.flows, f.key)
	tk := tupleKey{transport: f.key.transport, local: f.key.local, remote: f.key.remote}
	if head := t.tuples[tk]; head == f {
		if f.sameNext == nil {
			delete(t.tuples, tk)
		} else {
			t.tuples[tk] = f.sameNext
		}
	} else {
		for p := head; p != nil; p = p.sameNext {
			if p.sameNext == f {
				p.sameNext = f.sameNext
				break
			}
		}
	}
	la := f.key.local.Addr()
	if a := t.addrs[la]; a != nil {
		a.refs--
		if a.refs <= 0 {
			a.refs = 0
			a.until = t.gen + uint64(t.idleMax)
		} else if a.pod == f.wl {
			// Another flow of the same address may name the pod: found by
			// the next Update's single sweep, not a scan per removal.
			a.pod = nil
			t.podsDirty = true
		}
	}
}

// sweepAddrs forgets addresses whose flows are gone for a while.
func (t *Table) sweepAddrs() {
	for a, la := range t.addrs {
		if la.refs == 0 && t.gen > la.until {
			delete(t.addrs, a)
		}
	}
}

// refreshPods re-registers pod workloads for addresses that lost theirs.
func (t *Table) refreshPods() {
	t.podsDirty = false
	for _, f := range t.flows {
		if f.wl.PodIP.IsValid() {
			if a := t.addrs[f.key.local.Addr()]; a != nil && a.pod == nil {
				a.pod = f.wl
			}
		}
	}
}

func (t *Table) updateDrop(now time.Time, s *observed.DropSample, res *Result) {
	key := dropKey{reason: s.Reason, location: s.Location, transport: s.Transport, src: s.Source, dst: s.Dest, ifindex: s.Ifindex}
	d := t.drops[key]
	var count, bytes uint64
	switch {
	case d == nil:
		d = &drop{}
		t.drops[key] = d
		count, bytes = s.Count, s.Bytes
	case s.Count < d.count || s.Bytes < d.bytes:
		count, bytes = s.Count, s.Bytes // recreated entry
	default:
		count, bytes = s.Count-d.count, s.Bytes-d.bytes
	}
	d.count, d.bytes = s.Count, s.Bytes
	d.seen = t.gen
	if count == 0 {
		d.idle++
		if d.idle >= t.idleMax {
			// Drop keys are per packet tuple, so they pile up: delete idle
			// ones and let the next drop start a fresh entry.
			res.DeleteDrops = append(res.DeleteDrops, *s)
			delete(t.drops, key)
		}
		return
	}
	d.idle = 0

	// Both orientations: the packet may be leaving (local = source) or
	// arriving (local = destination); with two local pods, both ends match.
	var byCgroup, asDest, asSource *flow
	for f := t.tuples[tupleKey{transport: s.Transport, local: s.Dest, remote: s.Source}]; f != nil; f = f.sameNext {
		f.dropped = true
		if asDest == nil {
			asDest = f
		}
		if byCgroup == nil && s.CgroupID != 0 && f.wl.CgroupID == s.CgroupID {
			byCgroup = f
		}
	}
	for f := t.tuples[tupleKey{transport: s.Transport, local: s.Source, remote: s.Dest}]; f != nil; f = f.sameNext {
		f.dropped = true
		if asSource == nil {
			asSource = f
		}
		if byCgroup == nil && s.CgroupID != 0 && f.wl.CgroupID == s.CgroupID {
			byCgroup = f
		}
	}
	rec := observed.Drop{
		Reason:    t.reasonName(s.Reason),
		Location:  t.symbol(s.Location),
		Transport: s.Transport,
		Source:    s.Source,
		Dest:      s.Dest,
		Interface: s.Ifname,
		Count:     count,
		Bytes:     bytes,
		Time:      s.LastSeen,
	}
	if rec.Time.IsZero() {
		rec.Time = now
	}
	switch {
	case byCgroup != nil:
		rec.Local = *byCgroup.wl
	case asDest != nil:
		rec.Local = *asDest.wl
	case asSource != nil:
		rec.Local = *asSource.wl
	case s.CgroupID != 0:
		// Only pass an address known to be local: a remote one would be
		// mistaken for the pod IP.
		var local netip.Addr
		if t.isLocal(s.Dest.Addr()) {
			local = s.Dest.Addr()
		} else if t.isLocal(s.Source.Addr()) {
			local = s.Source.Addr()
		}
		rec.Local = t.identity(s.CgroupID, 0, "", local)
	}
	res.Report.Drops = append(res.Report.Drops, rec)
}

func (t *Table) emitFlows(res *Result) {
	for _, f := range t.flows {
		if f.seen != t.gen {
			// Gone from the kernel map without a close or expiry from us.
			t.evicted++
			res.Evicted++
			t.doomed = append(t.doomed, f)
			continue
		}
		if f.handshake {
			// A handshake whose accepted socket never carried a packet
			// (half-open, or accepted and idle): after the idle time it is
			// reported as the connection it is.
			f.idle++
			if f.idle > t.idleMax {
				res.Report.Flows = append(res.Report.Flows, t.flowRecord(f, nil, true))
				res.DeleteFlows = append(res.DeleteFlows, f.last)
				t.doomed = append(t.doomed, f)
			}
			continue
		}
		// The socket updateFlow found this generation: sockets are only
		// added before and removed after emitFlows.
		k := f.sock
		if k != nil {
			k.flowSeen = t.gen
		}
		if k != nil && k.closed() {
			res.Report.Flows = append(res.Report.Flows, t.flowRecord(f, k, true))
			res.DeleteFlows = append(res.DeleteFlows, f.last)
			t.doomed = append(t.doomed, f) // the socket itself is deleted in emitSockets
			continue
		}
		active := f.txPackets+f.rxPackets > 0 || f.txBytes+f.rxBytes > 0 || f.dropped ||
			(k != nil && (k.s.Retransmits != k.retransBase || k.s.ResetsSent+k.s.ResetsReceived != k.resetsBase))
		if active {
			f.idle = 0
			res.Report.Flows = append(res.Report.Flows, t.flowRecord(f, k, false))
			continue
		}
		f.idle++
		// An open TCP socket closes through the tcp probe; everything else
		// (UDP, TCP the tcp probe lost) ends by going quiet.
		if k == nil && f.idle >= t.idleMax {
			res.Report.Flows = append(res.Report.Flows, t.flowRecord(f, nil, true))
			res.DeleteFlows = append(res.DeleteFlows, f.last)
			t.doomed = append(t.doomed, f)
		}
	}
}

// emitSockets reports closed sockets the flow probe never showed (a refused
// or timed-out connect whose packets it missed, or a flow it lost), and
// deletes every closed socket's entry.
func (t *Table) emitSockets(res *Result) {
	for cookie, k := range t.socks {
		if k.seen != t.gen {
			delete(t.socks, cookie)
			continue
		}
		if !k.closed() {
			continue
		}
		// A listener has no peer: its close is not a connection.
		if k.flowSeen != t.gen && k.s.Remote.Port() != 0 && k.s.Remote.Addr().IsValid() && !k.s.Remote.Addr().IsUnspecified() {
			res.Report.Flows = append(res.Report.Flows, t.sockRecord(k))
		}
		res.DeleteTCP = append(res.DeleteTCP, cookie)
		t.tombs[cookie] = t.gen
		delete(t.socks, cookie)
	}
}

func (t *Table) tombstoned(cookie uint64) bool {
	if _, ok := t.tombs[cookie]; ok {
		t.tombs[cookie] = t.gen
		return true
	}
	return false
}

// expireTombs forgets cookies not seen for a while. Cookies are never reused
// within a boot, so a tomb only guards against late entries.
func (t *Table) expireTombs() {
	for c, g := range t.tombs {
		if t.gen-g > uint64(t.idleMax)+1 {
			delete(t.tombs, c)
		}
	}
}

// flowRecord builds the interval record of f and resets its deltas.
func (t *Table) flowRecord(f *flow, k *sock, final bool) observed.Flow {
	init := f.init
	if k != nil && k.s.Initiator != observed.InitiatorUnknown {
		init = k.s.Initiator
	}
	local, remote := f.key.local, f.key.remote
	rec := observed.Flow{
		Local:     *f.wl,
		Transport: f.key.transport,
		Dropped:   f.dropped,
		Start:     f.start,
		End:       f.last.LastSeen,
		Closed:    final,
		SRTT:      f.last.SRTT,
		Cookie:    f.key.cookie,
	}
	if localIsSource(init, local, remote) {
		rec.Source, rec.Dest, rec.LocalRole = local, remote, observed.RoleClient
		rec.SourceBytes, rec.SourcePackets = f.txBytes, f.txPackets
		rec.DestBytes, rec.DestPackets = f.rxBytes, f.rxPackets
	} else {
		rec.Source, rec.Dest, rec.LocalRole = remote, local, observed.RoleServer
		rec.SourceBytes, rec.SourcePackets = f.rxBytes, f.rxPackets
		rec.DestBytes, rec.DestPackets = f.txBytes, f.txPackets
	}
	if k != nil {
		rec.State = k.s.State
		if final {
			rec.CloseCause = k.s.CloseCause
			if rec.CloseCause == observed.CloseNone {
				rec.CloseCause = observed.CloseFIN // TCP_CLOSE without a recorded cause
			}
			if k.s.ClosedAt.After(rec.End) {
				rec.End = k.s.ClosedAt
			}
		}
		// The flow probe reads srtt at every packet the socket sends; the
		// tcp probe only at state changes and retransmissions, so its value
		// can be minutes old. It fills in when the flow has none.
		if rec.SRTT == 0 {
			rec.SRTT = k.s.SRTT
		}
		rec.Retransmits = k.s.Retransmits - k.retransBase
		k.retransBase = k.s.Retransmits
		resets := k.s.ResetsSent + k.s.ResetsReceived
		rec.Resets = resets - k.resetsBase
		k.resetsBase = resets
		if rec.Start.IsZero() || (!k.s.OpenedAt.IsZero() && k.s.OpenedAt.Before(rec.Start)) {
			rec.Start = k.s.OpenedAt
		}
	} else if f.key.transport == observed.TransportTCP {
		rec.Retransmits = f.last.Retransmits - f.flowRetransBase
	}
	f.flowRetransBase = f.last.Retransmits
	rec.Remote, rec.Scope = t.peerAndScope(f.key, rec.Dest.Addr())

	f.txBytes, f.txPackets, f.rxBytes, f.rxPackets = 0, 0, 0, 0
	f.dropped = false
	return rec
}

// sockRecord builds the final record of a socket the flow probe never showed.
func (t *Table) sockRecord(k *sock) observed.Flow {
	local, remote := k.s.Local, k.s.Remote
	wl := t.identity(k.s.CgroupID, k.s.PID, k.s.Comm, local.Addr())
	rec := observed.Flow{
		Local:       wl,
		Transport:   observed.TransportTCP,
		State:       k.s.State,
		CloseCause:  k.s.CloseCause,
		SRTT:        k.s.SRTT,
		Retransmits: k.s.Retransmits - k.retransBase,
		Resets:      k.s.ResetsSent + k.s.ResetsReceived - k.resetsBase,
		Start:       k.s.OpenedAt,
		End:         k.s.ClosedAt,
		Closed:      true,
		Cookie:      k.s.Cookie,
	}
	if rec.CloseCause == observed.CloseNone {
		rec.CloseCause = observed.CloseFIN
	}
	if localIsSource(k.s.Initiator, local, remote) {
		rec.Source, rec.Dest, rec.LocalRole = local, remote, observed.RoleClient
	} else {
		rec.Source, rec.Dest, rec.LocalRole = remote, local, observed.RoleServer
	}
	rec.Remote, rec.Scope = t.peerAndScope(flowKey{transport: observed.TransportTCP, local: local, remote: remote}, rec.Dest.Addr())
	return rec
}

// localIsSource decides the initiator. Without one (the flow predates the
// probe) the lower port is taken as the server's; on a tie the remote end is.
func localIsSource(init observed.Initiator, local, remote netip.AddrPort) bool {
	switch init {
	case observed.InitiatorLocal:
		return true
	case observed.InitiatorRemote:
		return false
	}
	return local.Port() >= remote.Port()
}

// peerAndScope returns the record's remote workload and its destination's
// scope (dest is the remote or the local address of k), looking the remote
// address up once.
func (t *Table) peerAndScope(k flowKey, dest netip.Addr) (*observed.Workload, observed.Scope) {
	a := t.addrs[k.remote.Addr()]
	remote := t.remoteWorkload(k, a)
	if dest == k.remote.Addr() {
		return remote, t.scopeOf(dest, a != nil)
	}
	return remote, t.scope(dest)
}

// remoteWorkload finds the peer pod on this node: the socket at the other end
// of the same tuple, else any pod using the remote address locally. a is the
// remote address's entry: without one no local socket uses the address,
// so there is no tuple to look up.
func (t *Table) remoteWorkload(k flowKey, a *localAddr) *observed.Workload {
	if a == nil {
		return nil
	}
	for p := t.tuples[tupleKey{transport: k.transport, local: k.remote, remote: k.local}]; p != nil; p = p.sameNext {
		if p.wl.PodIP.IsValid() {
			return p.wl
		}
	}
	return a.pod
}

func (t *Table) isLocal(a netip.Addr) bool {
	_, ok := t.addrs[a]
	return t.isLocalKnown(a, ok)
}

// isLocalKnown is isLocal with the address's t.addrs lookup already done.
func (t *Table) isLocalKnown(a netip.Addr, inAddrs bool) bool {
	if !a.IsValid() {
		return false
	}
	if a.IsLoopback() {
		return true
	}
	if t.cfg.IsNodeAddr != nil && t.cfg.IsNodeAddr(a) {
		return true
	}
	return inAddrs
}

func (t *Table) scope(dest netip.Addr) observed.Scope {
	_, ok := t.addrs[dest]
	return t.scopeOf(dest, ok)
}

// scopeOf is scope with dest's t.addrs lookup already done.
func (t *Table) scopeOf(dest netip.Addr, inAddrs bool) observed.Scope {
	if t.isLocalKnown(dest, inAddrs) {
		return observed.ScopeNode
	}
	for _, p := range t.cfg.ClusterCIDRs {
		if p.Contains(dest) {
			return observed.ScopeCluster
		}
	}
	return observed.ScopeExternal
}

func (t *Table) identity(cgroupID uint64, pid uint32, comm string, local netip.Addr) observed.Workload {
	if t.cfg.Identity != nil {
		return t.cfg.Identity(cgroupID, pid, comm, local)
	}
	return observed.Workload{CgroupID: cgroupID, PID: pid, Executable: comm}
}

func (t *Table) symbol(addr uint64) string {
	if t.cfg.Symbol != nil {
		return t.cfg.Symbol(addr)
	}
	return "0x" + strconv.FormatUint(addr, 16)
}

func (t *Table) reasonName(r uint32) string {
	if t.cfg.ReasonName != nil {
		return t.cfg.ReasonName(r)
	}
	return strconv.FormatUint(uint64(r), 10)
}
