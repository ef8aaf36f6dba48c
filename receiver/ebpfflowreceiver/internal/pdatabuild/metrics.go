package pdatabuild

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/metadata"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

type metricID uint8

const (
	metricFlowBytes metricID = iota
	metricFlowPackets
	metricRTT
	metricRetransmits
	metricResets
	metricConnFailures
	metricDrops
	metricDNSDuration
	metricHTTPServerDuration
	metricHTTPClientDuration
	metricEdgeBytes
	metricEdgeConnections
	metricEdgeConnFailures
	metricEdgeRTT
	metricEdgeDrops
	metricEdgeDNSLookups
)

// metricDefs is indexed by metricID; emission follows this order.
var metricDefs = [...]struct {
	name, unit, description string
}{
	metricFlowBytes:          {semconv.MetricFlowBytes, "By", "Bytes of TCP/UDP flows at the IP layer (IP and L4 headers included, link layer excluded), by direction seen from the local workload."},
	metricFlowPackets:        {semconv.MetricFlowPackets, "{packet}", "Packets of TCP/UDP flows, GSO/GRO segments counted as the packets on the wire, by direction seen from the local workload."},
	metricRTT:                {semconv.MetricTCPRTT, "s", "Smoothed round-trip time of TCP connections: one sample per connection per flush interval in which the kernel had measured it."},
	metricRetransmits:        {semconv.MetricTCPRetransmits, "{segment}", "TCP segments retransmitted."},
	metricResets:             {semconv.MetricTCPResets, "{reset}", "TCP resets sent or received."},
	metricConnFailures:       {semconv.MetricTCPConnFailures, "{connection}", "TCP connections that ended refused or timed out."},
	metricDrops:              {semconv.MetricDrops, "{packet}", "Packets the kernel dropped, by drop reason."},
	metricDNSDuration:        {semconv.MetricDNSDuration, "s", "Time from a DNS query leaving the asking socket to its answer arriving; unanswered queries count with the configured timeout and error.type TIMEOUT."},
	metricHTTPServerDuration: {semconv.MetricHTTPServerDur, "s", "Duration of HTTP requests a local process served, from the request's first byte read to the response's last byte written."},
	metricHTTPClientDuration: {semconv.MetricHTTPClientDur, "s", "Duration of HTTP requests a local process sent, from the request's first byte written to the response's last byte read."},

	metricEdgeBytes:        {semconv.MetricEdgeBytes, "By", "Bytes between a client workload and a server workload (IP layer), transmit = client to server, receive = server to client; each connection counted once in the cluster."},
	metricEdgeConnections:  {semconv.MetricEdgeConnections, "{connection}", "Connections opened from a client workload to a server workload."},
	metricEdgeConnFailures: {semconv.MetricEdgeConnFailures, "{connection}", "Connections from a client workload to a server workload that ended refused or timed out."},
	metricEdgeRTT:          {semconv.MetricEdgeRTT, "s", "Smoothed TCP round-trip time seen by the client of a workload edge, one sample per connection per flush interval."},
	metricEdgeDrops:        {semconv.MetricEdgeDrops, "{packet}", "Packets of a workload edge the kernel dropped, by drop reason."},
	metricEdgeDNSLookups:   {semconv.MetricEdgeDNSLookups, "{lookup}", "DNS lookups from a client workload to a resolver workload; error.type is the response code when not NOERROR (TIMEOUT when unanswered)."},
}

// rttBounds are the explicit bucket bounds of ebpfflow.tcp.rtt in seconds:
// 100 µs (same host) to 10 s (retransmission back-off), about 2.5x apart.
var rttBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// dnsBounds are those of dns.lookup.duration: a node-local cache answers in
// well under a millisecond, a resolver's retry back-off takes seconds.
var dnsBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// histogramBounds returns the bucket bounds of a histogram metric, nil for sums.
func histogramBounds(id metricID) []float64 {
	switch id {
	case metricRTT, metricEdgeRTT:
		return rttBounds
	case metricDNSDuration:
		return dnsBounds
	case metricHTTPServerDuration, metricHTTPClientDuration:
		return httpBounds
	}
	return nil
}

// edge is a series' data point attributes. Only low-cardinality values go
// here: never addresses or client ports. Empty / zero fields are omitted.
type edge struct {
	transport  string
	port       uint16 // destination.port: the server's port
	scope      string
	role       string
	direction  string
	peerKey    string // "destination.k8s.pod.uid" or "source.k8s.pod.uid"
	peerPodUID string
	cause      string
	reason     string
	errorType  string // error.type
	server     string // server.address: the resolver of dns.lookup.duration, the HTTP authority's host
	serverPort uint16 // server.port of HTTP and of workload edges
	method     string // http.request.method
	status     int    // http.response.status_code
	qtype      string
	qname      string // only when enabled (cardinality)

	// The far end's workload on per-workload metrics, when the cluster
	// view names it (it replaces peerPodUID then: bounded by workloads).
	peerSide, peerNS, peerWorkload, peerKind, peerService string

	// Workload-edge metrics (resource: the node).
	clientWL, clientNS, clientKind            string
	serverWL, serverNS, serverKind, serverSvc string
}

type seriesKey struct {
	res    observed.Workload
	metric metricID
	edge   edge
}

type lastSeries struct {
	k seriesKey
	s *series
}

// series is one cumulative time series. start is when its counting began;
// it stays fixed for the series' life, and a series forgotten while idle
// restarts later from zero with a new start, which is how cumulative
// consumers recognise a reset.
type series struct {
	start   pcommon.Timestamp
	touched pcommon.Timestamp // report time of the last change
	value   uint64
	hist    *histogram
}

type histogram struct {
	count    uint64
	sum      float64
	min, max float64
	bounds   []float64
	buckets  []uint64 // len(bounds)+1
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, buckets: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if h.count == 0 || v > h.max {
		h.max = v
	}
	h.count++
	h.sum += v
	// Bucket i holds (bounds[i-1], bounds[i]]; the last one everything above.
	h.buckets[sort.SearchFloat64s(h.bounds, v)]++
}

// Metrics folds the report into the cumulative state and returns every live
// series, one ResourceMetrics per local workload. Series are created on
// their first non-zero increment and forgotten after the idle limit without
// change (counted, see Evicted).
//
// For metrics the resource of a host process leaves out process.pid: a pid
// per short-lived client process would turn every curl into new series.
func (t *Builder) Metrics(r observed.Report) pmetric.Metrics {
	t.now = pcommon.NewTimestampFromTime(r.Time)
	for i := range r.Flows {
		t.addFlow(&r.Flows[i])
	}
	for i := range r.Drops {
		d := &r.Drops[i]
		t.add(metricResource(d.Local), metricDrops, edge{transport: d.Transport.String(), reason: d.Reason}, d.Count)
		if t.cfg.Peers != nil {
			t.addEdgeDrop(d)
		}
	}
	for i := range r.DNS {
		t.addDNS(&r.DNS[i])
		if t.cfg.Peers != nil {
			t.addEdgeDNS(&r.DNS[i])
		}
	}
	for i := range r.HTTP {
		t.addHTTP(&r.HTTP[i])
	}
	if r.Partial {
		return pmetric.NewMetrics() // folded in; the next full report emits them
	}
	t.evictIdle()
	md := t.emit(t.now)
	t.intervalStart = t.now
	return md
}

func (t *Builder) addFlow(f *observed.Flow) {
	res := metricResource(f.Local)
	e := edge{
		transport: f.Transport.String(),
		port:      f.Dest.Port(),
		role:      f.LocalRole.String(),
	}
	if f.Scope != 0 {
		e.scope = f.Scope.String()
	}
	var p peer
	if t.cfg.Peers != nil {
		e.peerSide, p = t.flowPeer(f, false)
		e.peerNS, e.peerWorkload, e.peerKind, e.peerService = p.workload()
	}
	if f.Remote != nil && f.Remote.PodUID != "" && e.peerWorkload == "" {
		e.peerKey = peerKeys[1].podUID // {side}.k8s.pod.uid of the remote end
		if f.LocalRole == observed.RoleServer {
			e.peerKey = peerKeys[0].podUID
		}
		e.peerPodUID = f.Remote.PodUID
	}
	if t.cfg.Peers != nil {
		t.addEdgeFlow(f, &p)
	}
	g := t.flowGroup(&res, &e, f)
	// The source is the initiator: the local end when it is the client.
	txBytes, txPackets, rxBytes, rxPackets := f.SourceBytes, f.SourcePackets, f.DestBytes, f.DestPackets
	if f.LocalRole == observed.RoleServer {
		txBytes, txPackets, rxBytes, rxPackets = rxBytes, rxPackets, txBytes, txPackets
	}
	t.addTo(g, slotBytesTx, txBytes)
	t.addTo(g, slotBytesRx, rxBytes)
	t.addTo(g, slotPacketsTx, txPackets)
	t.addTo(g, slotPacketsRx, rxPackets)

	if f.Transport != observed.TransportTCP {
		return
	}
	if f.SRTT > 0 {
		if s := t.slot(g, slotRTT); s != nil {
			if s.hist == nil {
				s.hist = newHistogram(rttBounds)
			}
			s.hist.observe(f.SRTT.Seconds())
			s.touched = t.now
		}
	}
	t.addTo(g, slotRetransmits, uint64(f.Retransmits))
	t.addTo(g, slotResets, uint64(f.Resets))
	if f.Closed && (f.CloseCause == observed.CloseRefused || f.CloseCause == observed.CloseTimeout) {
		fe := e
		fe.cause = f.CloseCause.String()
		t.add(res, metricConnFailures, fe, 1)
	}
}

// A flow group is the series one flow record adds to: same resource and
// same data point attributes but for the direction. The thousands of flows
// of a node fold into a few hundred groups, so Metrics finds a flow's
// series with one lookup of a small key instead of hashing the whole
// seriesKey once per metric.
type flowGroup struct {
	res  observed.Workload
	e    edge
	s    [slotCount]*series // nil until the series exists
	next *flowGroup         // another group with the same flowGroupKey
}

// The series of a flow group, in the order addFlow first touches them
// (which decides what is lost at the series limit).
const (
	slotBytesTx = iota
	slotBytesRx
	slotPacketsTx
	slotPacketsRx
	slotRTT
	slotRetransmits
	slotResets
	slotCount
)

var slotMetrics = [slotCount]struct {
	metric    metricID
	direction string
}{
	slotBytesTx:     {metricFlowBytes, semconv.DirectionTx},
	slotBytesRx:     {metricFlowBytes, semconv.DirectionRx},
	slotPacketsTx:   {metricFlowPackets, semconv.DirectionTx},
	slotPacketsRx:   {metricFlowPackets, semconv.DirectionRx},
	slotRTT:         {metricRTT, ""},
	slotRetransmits: {metricRetransmits, ""},
	slotResets:      {metricResets, ""},
}

// flowGroupKey is what a flow group is found by: cheap to hash, and
// selective enough that groups sharing one are rare (they are compared
// in full).
type flowGroupKey struct {
	cgroupID     uint64
	port         uint16
	transport    observed.Transport
	role         observed.Role
	scope        observed.Scope
	peerWorkload string
	peerPodUID   string
}

// flowGroup returns the group of res and e, creating it.
func (t *Builder) flowGroup(res *observed.Workload, e *edge, f *observed.Flow) *flowGroup {
	k := flowGroupKey{cgroupID: res.CgroupID, port: e.port, transport: f.Transport, role: f.LocalRole, scope: f.Scope,
		peerWorkload: e.peerWorkload, peerPodUID: e.peerPodUID}
	head := t.groups[k]
	for g := head; g != nil; g = g.next {
		if g.res == *res && g.e == *e {
			return g
		}
	}
	if len(t.groups) >= max(t.cfg.MaxSeries, maxAddrCache) {
		clear(t.groups) // bounded like the series (groups of zero deltas hold none)
		head = nil
	}
	g := &flowGroup{res: *res, e: *e, next: head}
	t.groups[k] = g
	return g
}

// slot returns the group's series i, creating it (nil at the series limit).
func (t *Builder) slot(g *flowGroup, i int) *series {
	if s := g.s[i]; s != nil {
		return s
	}
	e := g.e
	e.direction = slotMetrics[i].direction
	s := t.get(g.res, slotMetrics[i].metric, e)
	g.s[i] = s
	return s
}

// addTo is add for a flow group's series.
func (t *Builder) addTo(g *flowGroup, i int, delta uint64) {
	if delta == 0 {
		return
	}
	if s := t.slot(g, i); s != nil {
		s.value += delta
		s.touched = t.now
	}
}

// observe adds one sample to a histogram series.
func (t *Builder) observe(res observed.Workload, m metricID, e edge, v float64) {
	if s := t.get(res, m, e); s != nil {
		if s.hist == nil {
			s.hist = newHistogram(histogramBounds(m))
		}
		s.hist.observe(v)
		s.touched = t.now
	}
}

func metricResource(w observed.Workload) observed.Workload {
	w.PID = 0
	return w
}

func (t *Builder) add(res observed.Workload, m metricID, e edge, delta uint64) {
	if delta == 0 {
		return // no series for nothing, and no change keeps an idle series idle
	}
	if s := t.get(res, m, e); s != nil {
		s.value += delta
		s.touched = t.now
	}
}

// get returns the series, creating it unless the series limit is reached:
// then the increment is lost and counted.
func (t *Builder) get(res observed.Workload, m metricID, e edge) *series {
	k := seriesKey{res: res, metric: m, edge: e}
	l := &t.last[m]
	if l.s != nil && l.k == k {
		return l.s
	}
	if s, ok := t.series[k]; ok {
		l.k, l.s = k, s
		return s
	}
	if len(t.series) >= t.cfg.MaxSeries {
		t.evictedLimit.Add(1)
		return nil
	}
	s := &series{start: t.intervalStart}
	t.series[k] = s
	l.k, l.s = k, s
	t.live.Store(int64(len(t.series)))
	return s
}

func (t *Builder) evictIdle() {
	evicted := false
	for k, s := range t.series {
		if time.Duration(t.now-s.touched) >= t.cfg.SeriesIdleTimeout {
			delete(t.series, k)
			t.evictedIdle.Add(1)
			evicted = true
		}
	}
	if evicted {
		clear(t.groups) // they point at series
	}
	clear(t.last[:])
	t.live.Store(int64(len(t.series)))
}

// emit writes every live series in a stable order: resources, then metrics
// in metricDefs order, then data points by attributes.
func (t *Builder) emit(now pcommon.Timestamp) pmetric.Metrics {
	md := pmetric.NewMetrics()
	keys := make([]seriesKey, 0, len(t.series))
	for k := range t.series {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)

	var (
		ms      pmetric.MetricSlice
		m       pmetric.Metric
		lastRes *observed.Workload
		lastM   = metricID(255)
	)
	for i := range keys {
		k := &keys[i]
		if lastRes == nil || *lastRes != k.res {
			rm := md.ResourceMetrics().AppendEmpty()
			t.putResource(rm.Resource().Attributes(), k.res)
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(metadata.ScopeName)
			sm.Scope().SetVersion(t.cfg.ScopeVersion)
			ms = sm.Metrics()
			lastRes, lastM = &k.res, metricID(255)
		}
		if k.metric != lastM {
			m = newMetric(ms, k.metric)
			lastM = k.metric
		}
		s := t.series[*k]
		var attrs pcommon.Map
		if s.hist != nil {
			dp := m.Histogram().DataPoints().AppendEmpty()
			dp.SetStartTimestamp(s.start)
			dp.SetTimestamp(now)
			dp.SetCount(s.hist.count)
			dp.SetSum(s.hist.sum)
			dp.SetMin(s.hist.min)
			dp.SetMax(s.hist.max)
			dp.ExplicitBounds().FromRaw(s.hist.bounds)
			dp.BucketCounts().FromRaw(s.hist.buckets)
			attrs = dp.Attributes()
		} else {
			dp := m.Sum().DataPoints().AppendEmpty()
			dp.SetStartTimestamp(s.start)
			dp.SetTimestamp(now)
			dp.SetIntValue(clampInt(s.value))
			attrs = dp.Attributes()
		}
		putEdge(attrs, &k.edge)
	}
	return md
}

func newMetric(ms pmetric.MetricSlice, id metricID) pmetric.Metric {
	def := metricDefs[id]
	m := ms.AppendEmpty()
	m.SetName(def.name)
	m.SetUnit(def.unit)
	m.SetDescription(def.description)
	if histogramBounds(id) != nil {
		m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		return m
	}
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	return m
}

func putEdge(m pcommon.Map, e *edge) {
	if e.transport != "" {
		m.PutStr(semconv.AttrTransport, e.transport)
	}
	if e.port != 0 {
		m.PutInt(semconv.AttrDstPort, int64(e.port))
	}
	if e.scope != "" {
		m.PutStr(semconv.AttrDestScope, e.scope)
	}
	if e.role != "" {
		m.PutStr(semconv.AttrFlowLocalRole, e.role)
	}
	if e.direction != "" {
		m.PutStr(semconv.AttrIODirection, e.direction)
	}
	if e.peerKey != "" {
		m.PutStr(e.peerKey, e.peerPodUID)
	}
	if e.peerSide != "" {
		k := &sourceKeys
		if e.peerSide == semconv.SideDestination {
			k = &destinationKeys
		}
		putNonEmpty(m, k.namespace, e.peerNS)
		putNonEmpty(m, k.workload, e.peerWorkload)
		putNonEmpty(m, k.kind, e.peerKind)
		putNonEmpty(m, k.service, e.peerService)
	}
	if e.clientWL != "" {
		m.PutStr(semconv.AttrEdgeClient, e.clientWL)
		putNonEmpty(m, clientKeys.namespace, e.clientNS)
		putNonEmpty(m, clientKeys.kind, e.clientKind)
		m.PutStr(semconv.AttrEdgeServer, e.serverWL)
		putNonEmpty(m, serverKeys.namespace, e.serverNS)
		putNonEmpty(m, serverKeys.kind, e.serverKind)
		putNonEmpty(m, serverKeys.service, e.serverSvc)
	}
	if e.cause != "" {
		m.PutStr(semconv.AttrFlowCloseCause, e.cause)
	}
	if e.reason != "" {
		m.PutStr(semconv.AttrDropReason, e.reason)
	}
	if e.errorType != "" {
		m.PutStr(semconv.AttrErrorType, e.errorType)
	}
	if e.server != "" {
		m.PutStr(semconv.AttrServerAddr, e.server)
	}
	if e.serverPort != 0 {
		m.PutInt(semconv.AttrServerPort, int64(e.serverPort))
	}
	if e.method != "" {
		m.PutStr(semconv.AttrHTTPMethod, e.method)
	}
	if e.status != 0 {
		m.PutInt(semconv.AttrHTTPStatus, int64(e.status))
	}
	if e.qtype != "" {
		m.PutStr(semconv.AttrDNSQuestionType, e.qtype)
	}
	if e.qname != "" {
		m.PutStr(semconv.AttrDNSQuestionName, e.qname)
	}
}

func compareKeys(a, b seriesKey) int {
	if c := compareWorkloads(&a.res, &b.res); c != 0 {
		return c
	}
	if c := cmp.Compare(a.metric, b.metric); c != 0 {
		return c
	}
	x, y := &a.edge, &b.edge
	return cmp.Or(
		cmp.Compare(x.transport, y.transport),
		cmp.Compare(x.port, y.port),
		cmp.Compare(x.scope, y.scope),
		cmp.Compare(x.role, y.role),
		cmp.Compare(x.direction, y.direction),
		cmp.Compare(x.peerKey, y.peerKey),
		cmp.Compare(x.peerPodUID, y.peerPodUID),
		cmp.Compare(x.cause, y.cause),
		cmp.Compare(x.reason, y.reason),
		cmp.Compare(x.errorType, y.errorType),
		cmp.Compare(x.server, y.server),
		cmp.Compare(x.method, y.method),
		cmp.Compare(x.status, y.status),
		cmp.Compare(x.qtype, y.qtype),
		cmp.Compare(x.qname, y.qname),
		cmp.Compare(x.peerSide, y.peerSide),
		cmp.Compare(x.peerNS, y.peerNS),
		cmp.Compare(x.peerWorkload, y.peerWorkload),
		cmp.Compare(x.peerKind, y.peerKind),
		cmp.Compare(x.peerService, y.peerService),
		cmp.Compare(x.clientWL, y.clientWL),
		cmp.Compare(x.clientNS, y.clientNS),
		cmp.Compare(x.clientKind, y.clientKind),
		cmp.Compare(x.serverWL, y.serverWL),
		cmp.Compare(x.serverNS, y.serverNS),
		cmp.Compare(x.serverKind, y.serverKind),
		cmp.Compare(x.serverSvc, y.serverSvc),
		cmp.Compare(x.serverPort, y.serverPort),
	)
}

func compareWorkloads(a, b *observed.Workload) int {
	return cmp.Or(
		cmp.Compare(a.CgroupPath, b.CgroupPath),
		cmp.Compare(a.PodUID, b.PodUID),
		cmp.Compare(a.ContainerID, b.ContainerID),
		a.PodIP.Compare(b.PodIP),
		cmp.Compare(a.Executable, b.Executable),
		cmp.Compare(a.PID, b.PID),
		cmp.Compare(a.CgroupID, b.CgroupID),
	)
}

// Series returns the number of cumulative series held.
func (t *Builder) Series() int64 { return t.live.Load() }

// Evicted returns the series forgotten after the idle limit, and the new
// series refused (their increments lost) at the series limit.
func (t *Builder) Evicted() (idle, limit uint64) {
	return t.evictedIdle.Load(), t.evictedLimit.Load()
}
