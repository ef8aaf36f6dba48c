// Package engine runs the eBPF probes without any collector dependency:
// preflight, load and attach (a probe that fails degrades, the others keep
// running), then every flush interval it reads the probes' maps, folds them
// through the flow table, deletes what the table is done with, and hands the
// report to a sink. The collector receiver is a thin adapter around it.
package engine

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/dnsmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/flowtable"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/kallsyms"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// Probe names in Stats (and the `probe` attribute of self-telemetry).
const (
	ProbeFlow = "flow"
	ProbeTCP  = "tcp"
	ProbeDrop = "drop"
	ProbeDNS  = "dns"
	ProbeHTTP = "http"
	// ProbeFlowOwner is the flow probe's cgroup/sock_create program, which
	// the kernel may refuse alone: flows then carry no pid or command.
	ProbeFlowOwner = "flow_owner"
)

// Config is the receiver's settings as its config.go defaulted, validated
// and normalised them: the engine and the packages below it take every
// value as it is and add no defaults of their own.
type Config struct {
	FlushInterval time.Duration // how often the probes are read and a report is made
	Flows         FlowsConfig
	Drops         DropsConfig
	DNS           DNSConfig
	HTTP          HTTPConfig
	ClusterCIDRs  []netip.Prefix // destinations inside are ScopeCluster
	CgroupRoot    string         // cgroup v2 mount to attach to; "" = found in /proc/mounts
	// Services, when set, turns on backend lookups: a client connection or
	// DNS query to one of its addresses gets the backend that answered
	// (Flow.Backend, DNSLookup.Backend) from the node's connection
	// tracking. Wiring rather than a setting: the receiver passes its
	// cluster view when kubernetes.service_backends is on.
	Services ServiceAddresses
}

// FlowsConfig drives the flow and tcp probes and the flow table.
type FlowsConfig struct {
	Enabled bool
	// MaxFlows sizes the kernel's flow map and the tcp probe's socket map.
	MaxFlows uint32
	// IdleTimeout ends a flow with no open TCP socket behind it (UDP, or TCP
	// the tcp probe did not see close) after this long without traffic; it
	// takes effect at the first flush after it, whatever FlushInterval is.
	IdleTimeout time.Duration
}

// DropsConfig drives the drop probe.
type DropsConfig struct {
	Enabled bool
	// IgnoreReasons are kernel drop reason names (SKB_DROP_REASON_* without
	// the prefix, upper case) not to report.
	IgnoreReasons []string
}

// DNSConfig drives the dns probe and the DNS matcher.
type DNSConfig struct {
	Enabled    bool
	Timeout    time.Duration // a query unanswered this long is reported as TIMEOUT
	MaxPending int           // queries awaiting an answer; the oldest is forgotten beyond
}

// idleIntervals is the flow table's idle limit in flushes: the first flush
// at or after IdleTimeout without traffic ends a flow.
func (c *Config) idleIntervals() int {
	return max(1, int((c.Flows.IdleTimeout+c.FlushInterval-1)/c.FlushInterval))
}

// ProbeStats is one probe's self-telemetry. Err is set while the probe is
// not working: it failed to load/attach (for good), or its last read failed.
type ProbeStats struct {
	Counters probe.Counters
	Err      error
}

// Stats is the engine's self-telemetry.
type Stats struct {
	Probes map[string]ProbeStats
	// Parts are programs of a live probe that failed alone (non-nil error)
	// or run (nil): ProbeFlowOwner while the flow probe runs.
	Parts       map[string]error
	FlowsActive int
	Evicted     uint64 // cumulative flows lost to LRU eviction
	DNS         dnsmatch.Stats
	DNSPending  int // queries awaiting an answer
	Backends    BackendStats
	HTTP        HTTPStats
}

// Sources are what the flush loop reads; the Linux probes implement them,
// tests use fakes.
// Flows and TCP sockets are handed over in batches as they are read.
type flowSource interface {
	probe.Probe
	Each(boot time.Time, each func([]observed.FlowSample)) error
	Delete(keys []observed.FlowSample) error
}

type tcpSource interface {
	probe.Probe
	Each(boot time.Time, each func([]observed.TCPSample)) error
	Delete(cookies []uint64) error
}

// dnsSource streams captured DNS packets until ctx ends or it is closed.
// Drain returns once Run has handed over every packet captured before the
// call (false after timeout).
type dnsSource interface {
	probe.Probe
	Run(ctx context.Context, boot time.Time, handle func(*observed.DNSPacket)) error
	Drain(timeout time.Duration) bool
}

type dropSource interface {
	probe.Probe
	Snapshot(boot time.Time) ([]observed.DropSample, error)
	Delete(keys []observed.DropSample) error
}

// slot is one probe: live, or failed with the error that stopped it.
type slot struct {
	name string
	p    probe.Probe // nil when failed or disabled
	err  error       // permanent failure

	mu      sync.Mutex
	readErr error // last snapshot / delete error, nil after a good read
}

func (s *slot) setReadErr(err error) {
	s.mu.Lock()
	s.readErr = err
	s.mu.Unlock()
}

// Node is one node's observation: its probes, the flow table and the DNS
// matcher they feed, and the flush loop that reports them. Create it with
// New. (The anomaly_detection components' engine is anomaly.Engine.)
type Node struct {
	cfg  Config
	log  *zap.Logger
	sink func(observed.Report)

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}

	// Set by start, read-only afterwards.
	boot  time.Time
	slots []*slot // load order; closed in reverse
	flows flowSource
	tcp   tcpSource
	drops dropSource
	dns   dnsSource
	table *flowtable.Table
	syms  *kallsyms.Table // names drop locations; nil without drops or symbols
	// identity resolves a DNS lookup's asking socket; flows resolve theirs in the table.
	identity func(cgroupID uint64, pid uint32, comm string, local netip.Addr) observed.Workload

	// The DNS reader goroutine feeds the matcher, the flush drains it.
	dnsMu      sync.Mutex
	matcher    *dnsmatch.Matcher
	dnsStats   dnsmatch.Stats
	dnsPending int
	dnsDone    chan struct{}

	// The HTTP reader goroutine feeds http, the loop takes its exchanges.
	http     *httpPath
	httpDone chan struct{}

	// flowOwnerErr is why the flow probe runs without its owner program
	// (set by start, read-only afterwards).
	flowOwnerErr error
	// backends looks up Service backends (nil: off); backendsErr is why
	// they are off although asked for. Set by start.
	backends    *backends
	backendsErr error

	active      atomic.Int64
	evicted     atomic.Uint64
	readFailing atomic.Bool // a read error was logged; log recovery once
}

// New creates an engine; nothing touches the kernel before Start. The sink
// owns a report only during its call: the engine reuses the memory of
// Report.HTTP for later exchanges (a sink that keeps them copies them).
func New(cfg Config, logger *zap.Logger, sink func(observed.Report)) *Node {
	if logger == nil {
		logger = zap.NewNop()
	}
	if sink == nil {
		sink = func(observed.Report) {}
	}
	return &Node{cfg: cfg, log: logger, sink: sink}
}

// Start runs the preflight checks, loads and attaches the enabled probes and
// starts flushing. It fails when the node cannot run probes at all or when
// every enabled probe failed; a single failing probe only shows in Stats.
func (e *Node) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("engine closed")
	}
	if e.started {
		return errors.New("engine already started")
	}
	if err := e.start(); err != nil {
		e.closeProbes()
		return err
	}
	e.started = true
	e.run()
	return nil
}

// run starts the flush goroutine over the probes start set up.
func (e *Node) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan struct{})
	go e.loop(ctx)
	if e.dns != nil {
		e.dnsDone = make(chan struct{})
		go e.readDNS(ctx)
	}
	if e.http != nil {
		e.httpDone = make(chan struct{})
		go e.readHTTP(ctx)
	}
}

// readHTTP feeds the span path from the http probe until the engine
// closes. A reader that fails marks the probe down; the others keep running.
func (e *Node) readHTTP(ctx context.Context) {
	defer close(e.httpDone)
	err := e.http.src.Run(ctx, e.boot, e.http)
	if err != nil && ctx.Err() == nil {
		e.log.Warn("http probe reader stopped; running without HTTP", zap.Error(err))
		if s := e.slot(ProbeHTTP); s != nil {
			s.setReadErr(err)
		}
	}
}

// takeHTTP returns the exchanges completed since the last take, with their
// workloads resolved.
func (e *Node) takeHTTP() []observed.HTTPExchange {
	if e.http == nil {
		return nil
	}
	xs := e.http.take()
	if e.identity != nil {
		// A client and its server on the node alternate: the last two
		// answers serve most exchanges without resolving again.
		type key struct {
			cgroup uint64
			pid    uint32
			comm   string
			local  netip.Addr
		}
		var recent [2]struct {
			k  key
			w  observed.Workload
			ok bool
		}
	next:
		for i := range xs {
			x := &xs[i]
			k := key{x.CgroupID, x.PID, x.Comm, x.LocalAddr.Addr()}
			for j := range recent {
				if recent[j].ok && recent[j].k == k {
					x.Local = recent[j].w
					continue next
				}
			}
			x.Local = e.identity(k.cgroup, k.pid, k.comm, k.local)
			recent[1] = recent[0]
			recent[0].k, recent[0].w, recent[0].ok = k, x.Local, true
		}
	}
	if e.backends != nil {
		e.backends.annotateHTTP(xs)
	}
	return xs
}

// spanInterval is how often HTTP exchanges are reported between flushes:
// a busy node completes too many requests to hold them for a whole flush
// interval.
func (c *Config) spanInterval() time.Duration {
	return min(time.Second, c.FlushInterval)
}

// flushSpans reports the HTTP exchanges completed since the last report.
func (e *Node) flushSpans(now time.Time) {
	if xs := e.takeHTTP(); len(xs) > 0 {
		e.sink(observed.Report{Time: now, HTTP: xs, Partial: true})
		e.http.recycle(xs)
	}
}

// readDNS feeds the matcher from the dns probe until the engine closes. A
// reader that fails marks the probe down; the other probes keep running.
func (e *Node) readDNS(ctx context.Context) {
	defer close(e.dnsDone)
	err := e.dns.Run(ctx, e.boot, func(p *observed.DNSPacket) {
		e.dnsMu.Lock()
		e.matcher.Add(p)
		e.dnsMu.Unlock()
	})
	if err != nil && ctx.Err() == nil {
		e.log.Warn("dns probe reader stopped; running without DNS", zap.Error(err))
		if s := e.slot(ProbeDNS); s != nil {
			s.setReadErr(err)
		}
	}
}

// dnsDrainTimeout bounds how long a flush waits for the DNS reader: a full
// ring (2 MiB) decodes in a few ms.
const dnsDrainTimeout = 500 * time.Millisecond

// flushDNS returns the lookups completed or timed out since the last flush;
// ownLookups resolves their workloads.
func (e *Node) flushDNS(now time.Time) []observed.DNSLookup {
	if e.matcher == nil {
		return nil
	}
	// Every answer captured so far is matched before the matcher declares
	// a query unanswered.
	if e.dns != nil && !e.dns.Drain(dnsDrainTimeout) {
		e.log.Debug("dns ring not drained in time; its packets count at the next flush")
	}
	e.dnsMu.Lock()
	lookups := e.matcher.Flush(now)
	e.dnsStats, e.dnsPending = e.matcher.Stats(), e.matcher.Pending()
	e.dnsMu.Unlock()
	return lookups
}

// ownLookups resolves the lookups' workloads once the flush's flows are
// known (see ownDNS).
func (e *Node) ownLookups(lookups []observed.DNSLookup, flows []observed.Flow) {
	if e.identity == nil {
		return
	}
	for i := range lookups {
		l := &lookups[i]
		l.Local = e.identity(l.CgroupID, 0, "", l.Client.Addr())
	}
	ownDNS(lookups, flows)
}

func (e *Node) loop(ctx context.Context) {
	defer close(e.done)
	tick := time.NewTicker(e.cfg.FlushInterval)
	defer tick.Stop()
	var (
		spans <-chan time.Time // nil without HTTP: never fires
		full  <-chan struct{}  // a batch of HTTP exchanges is buffered
	)
	if e.http != nil {
		full = e.http.full
		if e.cfg.spanInterval() < e.cfg.FlushInterval {
			st := time.NewTicker(e.cfg.spanInterval())
			defer st.Stop()
			spans = st.C
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			e.flush(now)
		case now := <-spans:
			e.flushSpans(now)
		case <-full:
			e.flushSpans(time.Now())
		}
	}
}

// flush reads every live probe and emits one report. A failed read skips the
// whole flush: counters are cumulative, so the next flush catches up, and a
// partial read must not look like flows vanishing from the kernel.
func (e *Node) flush(now time.Time) {
	var (
		drops []observed.DropSample
		err   error
	)
	lookups := e.flushDNS(now)
	exchanges := e.takeHTTP()
	if e.http != nil {
		defer e.http.recycle(exchanges) // every path below has sunk them, or dropped them
	}
	if e.drops != nil {
		drops, err = e.drops.Snapshot(e.boot)
		if e.readFailed(ProbeDrop, "read drops", err) {
			e.sinkEvents(now, lookups, exchanges)
			return
		}
	}
	if e.syms != nil && len(drops) > 0 {
		// One read of the symbols for the flush's new locations, rather
		// than one per location as the table names them.
		locs := make([]uint64, len(drops))
		for i := range drops {
			locs[i] = drops[i].Location
		}
		if err := e.syms.Resolve(locs); err != nil {
			e.log.Debug("drop locations stay hexadecimal this flush", zap.Error(err))
		}
	}
	// The TCP sockets and then the flows are folded into the table as they
	// are read. TCP before flows: every packet of a socket seen closed is
	// then already in the flow sample its final record is built from. The
	// drops read above find every flow that existed when they were counted.
	var (
		flows             flowtable.Batches[observed.FlowSample]
		tcp               flowtable.Batches[observed.TCPSample]
		flowErr, tcpErr   error
		flowRead, tcpRead bool
	)
	if e.tcp != nil {
		tcp = func(each func([]observed.TCPSample)) error {
			tcpRead = true
			tcpErr = e.tcp.Each(e.boot, each)
			return tcpErr
		}
	}
	if e.flows != nil {
		flows = func(each func([]observed.FlowSample)) error {
			flowRead = true
			flowErr = e.flows.Each(e.boot, each)
			return flowErr
		}
	}
	res, _ := e.table.UpdateBatches(now, flows, tcp, drops)
	if (tcpRead && e.readFailed(ProbeTCP, "read tcp sockets", tcpErr)) ||
		(flowRead && e.readFailed(ProbeFlow, "read flows", flowErr)) {
		e.sinkEvents(now, lookups, exchanges)
		return
	}
	if e.readFailing.CompareAndSwap(true, false) {
		e.log.Info("probe maps readable again")
	}
	e.active.Store(int64(e.table.Active()))
	e.evicted.Store(e.table.Evicted())

	// A failed delete leaves an entry the table recognises and deletes again.
	if len(res.DeleteFlows) > 0 && e.flows != nil {
		e.deleteFailed(ProbeFlow, "delete flows", e.flows.Delete(res.DeleteFlows))
	}
	if len(res.DeleteTCP) > 0 && e.tcp != nil {
		e.deleteFailed(ProbeTCP, "delete tcp sockets", e.tcp.Delete(res.DeleteTCP))
	}
	if len(res.DeleteDrops) > 0 && e.drops != nil {
		e.deleteFailed(ProbeDrop, "delete drops", e.drops.Delete(res.DeleteDrops))
	}
	e.ownLookups(lookups, res.Report.Flows)
	if e.http != nil {
		e.http.tagFlows(res.Report.Flows)
	}
	res.Report.DNS = lookups
	if e.backends != nil {
		e.backends.annotate(res.Report.Flows, lookups)
	}
	res.Report.HTTP = exchanges
	e.sink(res.Report)
}

// ownDNS gives a lookup whose socket the DNS probe saw without its process
// (the cgroup hook runs in no process's context for answers) the workload of
// the same socket's flow record, which the socket-owner program named: the
// host process or container asking, so service.name is its executable.
func ownDNS(lookups []observed.DNSLookup, flows []observed.Flow) {
	var want map[netip.AddrPort][]int // asking socket → its lookups
	for i := range lookups {
		if l := &lookups[i]; l.Local.Service == "" {
			if want == nil {
				want = make(map[netip.AddrPort][]int)
			}
			want[l.Client] = append(want[l.Client], i)
		}
	}
	if len(want) == 0 {
		return
	}
	for i := range flows {
		f := &flows[i]
		if f.LocalRole != observed.RoleClient || f.Local.Service == "" {
			continue
		}
		for _, j := range want[f.Source] {
			if l := &lookups[j]; l.Server == f.Dest && l.Transport == f.Transport {
				l.Local = f.Local
			}
		}
	}
}

// sinkEvents delivers the lookups and exchanges of a flush whose map reads
// failed: they are already out of the matchers, and nothing about them
// depends on the maps.
func (e *Node) sinkEvents(now time.Time, lookups []observed.DNSLookup, exchanges []observed.HTTPExchange) {
	if len(lookups)+len(exchanges) > 0 {
		e.ownLookups(lookups, nil)
		e.sink(observed.Report{Time: now, DNS: lookups, HTTP: exchanges})
	}
}

// readFailed records a read error in Stats; it logs only the first of a run
// of failures, never one line per flush.
func (e *Node) readFailed(name, what string, err error) bool {
	s := e.slot(name)
	if s != nil {
		s.setReadErr(err)
	}
	if err == nil {
		return false
	}
	if e.readFailing.CompareAndSwap(false, true) {
		e.log.Warn("skipping flush: probe map read failed (retried every flush)", zap.String("probe", name), zap.String("op", what), zap.Error(err))
	}
	return true
}

func (e *Node) deleteFailed(name, what string, err error) {
	if s := e.slot(name); s != nil {
		s.setReadErr(err)
	}
	if err != nil {
		e.log.Debug("probe map delete failed", zap.String("probe", name), zap.String("op", what), zap.Error(err))
	}
}

func (e *Node) slot(name string) *slot {
	for _, s := range e.slots {
		if s.name == name {
			return s
		}
	}
	return nil
}

// Stats returns the probes' counters and errors and the flow table's size.
// Safe to call at any time from any goroutine, including from the sink.
func (e *Node) Stats() Stats {
	// e.mu is never held while the flush goroutine is waited for, so the
	// sink may call this.
	e.mu.Lock()
	defer e.mu.Unlock()
	slots := e.slots
	st := Stats{
		Probes:      make(map[string]ProbeStats, len(slots)),
		FlowsActive: int(e.active.Load()),
		Evicted:     e.evicted.Load(),
	}
	e.dnsMu.Lock()
	st.DNS, st.DNSPending = e.dnsStats, e.dnsPending
	e.dnsMu.Unlock()
	if e.http != nil {
		st.HTTP = e.http.stats()
	}
	if e.flows != nil {
		st.Parts = map[string]error{ProbeFlowOwner: e.flowOwnerErr}
	}
	if e.backends != nil {
		st.Backends = e.backends.stats()
	}
	st.Backends.Err = e.backendsErr
	for _, s := range slots {
		ps := ProbeStats{Err: s.err}
		if s.p != nil {
			c, err := s.p.Counters()
			ps.Counters = c
			s.mu.Lock()
			if ps.Err == nil {
				ps.Err = s.readErr
			}
			s.mu.Unlock()
			if ps.Err == nil && err != nil {
				ps.Err = err
			}
		}
		st.Probes[s.name] = ps
	}
	return st
}

// Close stops flushing (no final flush), waits for the flush goroutine and
// closes the probes in reverse load order. Safe without Start and when
// called twice.
func (e *Node) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	cancel, done := e.cancel, e.done
	e.mu.Unlock()

	if cancel != nil {
		cancel()
		<-done
		if e.dnsDone != nil {
			<-e.dnsDone
		}
		if e.httpDone != nil {
			<-e.httpDone
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closeProbes()
}

// closeProbes closes live probes in reverse order. Callers hold e.mu.
func (e *Node) closeProbes() error {
	var errs []error
	for i := len(e.slots) - 1; i >= 0; i-- {
		s := e.slots[i]
		if s.p == nil {
			continue
		}
		if err := s.p.Close(); err != nil {
			errs = append(errs, err)
		}
		s.p = nil
		if s.err == nil {
			s.err = errClosed
		}
	}
	e.flows, e.tcp, e.drops, e.dns = nil, nil, nil, nil
	if e.backends != nil {
		if err := e.backends.ct.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var errClosed = errors.New("probe closed")
