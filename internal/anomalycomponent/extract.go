package anomalycomponent

import (
	"hash/maphash"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/semconv"
)

// Extractor feeds pdata into an engine. Like the engine it is not safe for
// concurrent use; call it between Engine.Begin and Engine.Done.
type Extractor struct {
	e       *anomaly.Engine
	exclude map[string]struct{}
	window  int64
	seed    maphash.Seed

	bounds, counts []float64 // scratch
}

// New returns a translator feeding e; metric series identities leave out
// the engine's Config.ExcludeAttributes.
func NewExtractor(e *anomaly.Engine) *Extractor {
	cfg := e.Config()
	t := &Extractor{
		e:       e,
		exclude: make(map[string]struct{}, len(cfg.ExcludeAttributes)),
		window:  int64(cfg.Window),
		seed:    maphash.MakeSeed(),
	}
	for _, a := range cfg.ExcludeAttributes {
		t.exclude[strings.TrimSpace(a)] = struct{}{}
	}
	return t
}

// Logs extracts network.flow, network.drop and dns.lookup records. Other
// records, anomaly records included, are ignored.
func (t *Extractor) Logs(ld plog.Logs) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				name := lr.EventName()
				if name == "" {
					name = str(lr.Attributes(), semconv.AttrEventName)
				}
				switch name {
				case semconv.EventFlow, semconv.EventDrop, semconv.EventDNS:
				default:
					continue
				}
				ts := int64(lr.Timestamp())
				if ts == 0 {
					ts = int64(lr.ObservedTimestamp())
				}
				t.e.SeeLog(ts)
				switch name {
				case semconv.EventFlow:
					t.flow(res, lr.Attributes(), ts)
				case semconv.EventDrop:
					t.drop(res, lr.Attributes(), ts)
				case semconv.EventDNS:
					t.dns(lr.Attributes(), ts)
				}
			}
		}
	}
}

func (t *Extractor) series(sig *anomaly.Signal, ek anomaly.EdgeKey, sub string) *anomaly.Series {
	k := anomaly.Key{Signal: sig, Edge: ek, Sub: sub}
	if s := t.e.Lookup(&k); s != nil {
		return s
	}
	return t.e.Create(&k, describe(&k))
}

func (t *Extractor) flow(res, a pcommon.Map, ts int64) {
	transport := str(a, semconv.AttrTransport)
	role := str(a, semconv.AttrFlowLocalRole)
	port, _ := intv(a, semconv.AttrDstPort)
	ek := anomaly.EdgeKey{
		Family: anomaly.FamilyNetwork,
		A:      sideName(a, res, semconv.SideSource, role == "client"),
		B:      sideName(a, res, semconv.SideDestination, role == "server"),
		C:      transport,
		N:      port,
	}
	// A socket's smoothed RTT is refreshed by the ACKs of the data it
	// sends; one that only receives keeps an old estimate for as long as it
	// lives. Only an end that sent data in the interval (more than bare
	// 40-60-byte ACKs on average) says how the path is doing now.
	sentBytesKey, sentPacketsKey := semconv.AttrFlowSrcBytes, semconv.AttrFlowSrcPackets
	if role == "server" {
		sentBytesKey, sentPacketsKey = semconv.AttrFlowDstBytes, semconv.AttrFlowDstPackets
	}
	sentBytes, _ := num(a, sentBytesKey)
	sentPackets, _ := num(a, sentPacketsKey)
	if rtt, ok := num(a, semconv.AttrTCPRTT); ok && rtt > 0 && sentBytes > ackOnlyBytes*sentPackets {
		if s := t.series(FlowRTT, ek, ""); s != nil {
			t.e.AddValue(s, ts, rtt*1000) // seconds → ms
		}
	}
	// A connection between two workloads of this node is reported by both
	// ends: count its bytes once, from the client's record.
	if !(role == "server" && hasPeer(a, semconv.SideSource)) {
		sb, _ := num(a, semconv.AttrFlowSrcBytes)
		db, _ := num(a, semconv.AttrFlowDstBytes)
		if s := t.series(FlowTraffic, ek, ""); s != nil {
			t.e.AddValue(s, ts, sb+db)
		}
	}
	if transport == "tcp" {
		sentKey := semconv.AttrFlowSrcPackets
		if role == "server" {
			sentKey = semconv.AttrFlowDstPackets
		}
		sent, _ := num(a, sentKey)
		retr, _ := num(a, semconv.AttrTCPRetransmits)
		if sent > 0 || retr > 0 {
			if s := t.series(FlowRetransmits, ek, ""); s != nil {
				t.e.AddRatio(s, ts, retr, math.Max(sent, retr))
			}
		}
	}
}

// ackOnlyBytes is the most an IP packet without payload carries on average
// (IPv6 + TCP with timestamps and SACK blocks stays below it).
const ackOnlyBytes = 100

// ephemeralFrom is where Linux's default ephemeral port range starts: a
// port below it is taken for a service port.
const ephemeralFrom = 32768

func (t *Extractor) drop(res, a pcommon.Map, ts int64) {
	reason := str(a, semconv.AttrDropReason)
	if reason == "" {
		reason = "UNKNOWN"
	}
	count, ok := num(a, semconv.AttrDropCount)
	if !ok {
		count = 1
	}
	// Local side: the one whose address is the resource's pod IP.
	podIP := str(res, semconv.AttrPodIP)
	srcAddr, dstAddr := str(a, semconv.AttrSrcAddr), str(a, semconv.AttrDstAddr)
	src := sideName(a, res, semconv.SideSource, podIP != "" && srcAddr == podIP)
	dst := sideName(a, res, semconv.SideDestination, podIP != "" && dstAddr == podIP)
	sport, _ := intv(a, semconv.AttrSrcPort)
	dport, _ := intv(a, semconv.AttrDstPort)
	// A dropped reply (service port → ephemeral port) belongs to the edge
	// of its request: client → server:port, as flows name it.
	port := dport
	if dport >= ephemeralFrom && sport > 0 && sport < ephemeralFrom {
		src, dst, port = dst, src, sport
	}
	ek := anomaly.EdgeKey{Family: anomaly.FamilyNetwork, A: src, B: dst, C: str(a, semconv.AttrTransport), N: port}
	if s := t.series(DropRate, ek, reason); s != nil {
		t.e.AddValue(s, ts, count)
	}
}

func (t *Extractor) dns(a pcommon.Map, ts int64) {
	server := str(a, semconv.AttrServerAddr)
	if server == "" {
		return
	}
	rcode := str(a, semconv.AttrDNSRCode)
	timeout := rcode == "TIMEOUT"
	failed := rcode != "" && rcode != "NOERROR" && rcode != "NXDOMAIN" && !timeout
	// The resolver by its workload or Service when the cluster view named it.
	if v := firstStr(a, semconv.OnSide(semconv.SideDestination, semconv.AttrK8sWorkloadName), semconv.OnSide(semconv.SideDestination, semconv.AttrK8sServiceName)); v != "" {
		server = v
	}
	ek := anomaly.EdgeKey{Family: anomaly.FamilyDNS, A: server}
	if s := t.series(DNSTimeouts, ek, ""); s != nil {
		t.e.AddRatio(s, ts, b2f(timeout), 1)
	}
	if s := t.series(DNSErrors, ek, ""); s != nil {
		t.e.AddRatio(s, ts, b2f(failed), 1)
	}
	if !timeout {
		if d, ok := num(a, semconv.AttrDNSDuration); ok && d >= 0 {
			if s := t.series(DNSDuration, ek, ""); s != nil {
				t.e.AddValue(s, ts, d*1000) // seconds → ms
			}
		}
	}
}

// Traces extracts HTTP server and client spans.
func (t *Extractor) Traces(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		svc := resourceName(rs.Resource().Attributes(), true, nil)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				t.span(svc, spans.At(k))
			}
		}
	}
}

func (t *Extractor) span(svc string, sp ptrace.Span) {
	kind := sp.Kind()
	if kind != ptrace.SpanKindServer && kind != ptrace.SpanKindClient {
		return
	}
	a := sp.Attributes()
	code, hasCode := intv(a, semconv.AttrHTTPStatus)
	if !hasCode {
		code, hasCode = intv(a, semconv.AttrHTTPStatusV0)
	}
	_, hasMethod := a.Get(semconv.AttrHTTPMethod)
	if !hasMethod {
		_, hasMethod = a.Get(semconv.AttrHTTPMethodV0)
	}
	if !hasCode && !hasMethod {
		return
	}
	start, end := int64(sp.StartTimestamp()), int64(sp.EndTimestamp())
	if end < start || start == 0 {
		return
	}
	ek := anomaly.EdgeKey{Family: anomaly.FamilyHTTP, A: svc}
	dur, ratio := HTTPServerDuration, HTTPServer5xx
	if kind == ptrace.SpanKindClient {
		dur, ratio = HTTPClientDuration, HTTPClient5xx
		ek.C = "client"
		ek.B = firstStr(a, semconv.AttrPeerService, semconv.AttrServerAddr, semconv.AttrNetPeerName, semconv.AttrPeerAddr)
		if ek.B == "" {
			ek.B = "?"
		}
		if ek.B != str(a, semconv.AttrPeerService) {
			ek.N, _ = intv(a, semconv.AttrServerPort)
		}
	} else {
		ek.C = "server"
	}
	if s := t.series(dur, ek, ""); s != nil {
		t.e.AddValue(s, end, float64(end-start)/1e6)
	}
	if hasCode {
		if s := t.series(ratio, ek, ""); s != nil {
			t.e.AddRatio(s, end, b2f(code >= 500), 1)
		}
	}
}

// describe builds the identity of a series of the ebpfflow signals from its
// key alone (the key holds every identifying value).
func describe(k *anomaly.Key) anomaly.Identity {
	ek := k.Edge
	var id anomaly.Identity
	switch ek.Family {
	case anomaly.FamilyNetwork:
		id.Edge = ek.A + " → " + ek.B
		if ek.N > 0 {
			id.Edge += ":" + strconv.FormatInt(ek.N, 10)
		}
		if ek.C != "" && ek.C != "tcp" {
			id.Edge += "/" + ek.C
		}
		id.Attrs = []anomaly.Attr{
			{Key: "source", Value: ek.A},
			{Key: "destination", Value: ek.B},
			{Key: semconv.AttrDstPort, Int: ek.N, IsInt: true},
			{Key: semconv.AttrTransport, Value: ek.C},
		}
		switch k.Signal {
		case FlowRTT:
			id.What = "p99 RTT"
		case FlowTraffic:
			id.What = "traffic"
		case FlowRetransmits:
			id.What = "TCP retransmissions"
		case DropRate:
			id.What = "drop rate of " + k.Sub
			id.Subject = id.What + " on " + id.Edge
			id.Attrs = append(id.Attrs, anomaly.Attr{Key: semconv.AttrDropReason, Value: k.Sub})
		}
		if id.Subject == "" {
			id.Subject = id.What + " " + id.Edge
		}
	case anomaly.FamilyDNS:
		id.Edge = "resolver " + ek.A
		id.Attrs = []anomaly.Attr{{Key: semconv.AttrServerAddr, Value: ek.A}}
		switch k.Signal {
		case DNSTimeouts:
			id.What = "DNS timeouts"
		case DNSErrors:
			id.What = "DNS errors"
		case DNSDuration:
			id.What = "p99 DNS latency"
		}
		id.Subject = id.What + " at " + id.Edge
	case anomaly.FamilyHTTP:
		id.Attrs = []anomaly.Attr{{Key: "service", Value: ek.A}, {Key: "span.kind", Value: ek.C}}
		what := "p99 latency"
		if k.Signal.Kind == anomaly.Ratio {
			what = "HTTP 5xx ratio"
		}
		if ek.C == "client" {
			id.Edge = ek.A + " → " + ek.B
			if ek.N > 0 {
				id.Edge += ":" + strconv.FormatInt(ek.N, 10)
			}
			id.Attrs = append(id.Attrs, anomaly.Attr{Key: "peer", Value: ek.B})
			if ek.N > 0 {
				id.Attrs = append(id.Attrs, anomaly.Attr{Key: semconv.AttrServerPort, Int: ek.N, IsInt: true})
			}
			id.What = what
			id.Subject = what + " " + id.Edge
		} else {
			id.Edge = ek.A + " (server)"
			id.What = what + " served"
			id.Subject = id.What + " by " + ek.A
		}
	}
	return id
}

// Metrics extracts one series per metric (two for histograms) and
// identifying attributes.
func (t *Extractor) Metrics(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		rid, rfull := t.hashMap(res, 0x5eed)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				t.metric(res, rid, rfull, ms.At(k))
			}
		}
	}
}

// metricCtx is what every point of one metric shares.
type metricCtx struct {
	name, unit  string
	res         pcommon.Map
	rid, rfull  uint64
	nameHash    uint64
	attrs       pcommon.Map
	pid, stream uint64
}

func (t *Extractor) metric(res pcommon.Map, rid, rfull uint64, m pmetric.Metric) {
	c := metricCtx{name: m.Name(), unit: m.Unit(), res: res, rid: rid, rfull: rfull}
	c.nameHash = maphash.String(t.seed, c.name)
	point := func(attrs pcommon.Map) {
		c.attrs = attrs
		var pfull uint64
		c.pid, pfull = t.hashMap(attrs, 0xa77)
		c.stream = mix(c.nameHash ^ mix(rfull+0x9e3779b97f4a7c15) ^ mix(pfull+0x632be59bd9b4e019))
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			point(dp.Attributes())
			if s := t.metricSeries(anomaly.MetricGauge, &c); s != nil {
				t.e.AddValue(s, int64(dp.Timestamp()), numberValue(dp))
			}
		}
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		cumulative := sum.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := sum.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			point(dp.Attributes())
			ts, st, v := int64(dp.Timestamp()), int64(dp.StartTimestamp()), numberValue(dp)
			switch {
			case cumulative && !sum.IsMonotonic():
				if s := t.metricSeries(anomaly.MetricGauge, &c); s != nil {
					t.e.AddValue(s, ts, v)
				}
			case cumulative:
				d, from, ok := t.e.CumulativeDelta(c.stream, ts, st, v)
				if !ok {
					continue
				}
				if s := t.metricSeries(anomaly.MetricRate, &c); s != nil {
					t.e.AddRate(s, ts, from, d)
				}
			default:
				from := st
				if from <= 0 || from >= ts {
					from = ts - t.window
				}
				if s := t.metricSeries(anomaly.MetricRate, &c); s != nil {
					t.e.AddRate(s, ts, from, v)
				}
			}
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			point(dp.Attributes())
			eb, bc := dp.ExplicitBounds(), dp.BucketCounts()
			t.bounds, t.counts = t.bounds[:0], t.counts[:0]
			for i := 0; i < eb.Len(); i++ {
				t.bounds = append(t.bounds, eb.At(i))
			}
			for i := 0; i < bc.Len(); i++ {
				t.counts = append(t.counts, float64(bc.At(i)))
			}
			if len(t.counts) != len(t.bounds)+1 {
				continue
			}
			counts := t.counts
			ts := int64(dp.Timestamp())
			if cumulative {
				layout := uint64(len(t.bounds))
				for _, b := range t.bounds {
					layout = mix(layout ^ math.Float64bits(b))
				}
				d, _, ok := t.e.CumulativeCounts(c.stream, ts, int64(dp.StartTimestamp()), layout, counts)
				if !ok {
					continue
				}
				counts = d
			}
			for _, sig := range [2]*anomaly.Signal{anomaly.MetricP50, anomaly.MetricP99} {
				if s := t.metricSeries(sig, &c); s != nil {
					t.e.AddBuckets(s, ts, t.bounds, counts)
				}
			}
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			point(dp.Attributes())
			pos := dp.Positive()
			bc := pos.BucketCounts()
			t.counts = t.counts[:0]
			for i := 0; i < bc.Len(); i++ {
				t.counts = append(t.counts, float64(bc.At(i)))
			}
			t.counts = append(t.counts, float64(dp.ZeroCount())) // last: the zero bucket
			counts := t.counts
			ts := int64(dp.Timestamp())
			if cumulative {
				layout := mix(uint64(uint32(dp.Scale()))<<32 | uint64(uint32(pos.Offset())))
				d, _, ok := t.e.CumulativeCounts(c.stream, ts, int64(dp.StartTimestamp()), layout, counts)
				if !ok {
					continue
				}
				counts = d
			}
			n := len(counts) - 1
			for _, sig := range [2]*anomaly.Signal{anomaly.MetricP50, anomaly.MetricP99} {
				if s := t.metricSeries(sig, &c); s != nil {
					t.e.AddExpBuckets(s, ts, dp.Scale(), pos.Offset(), counts[:n], counts[n])
				}
			}
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			point(dp.Attributes())
			qs := dp.QuantileValues()
			for j := 0; j < qs.Len(); j++ {
				q := qs.At(j)
				var sig *anomaly.Signal
				switch q.Quantile() {
				case 0.5:
					sig = summaryP50
				case 0.99:
					sig = summaryP99
				default:
					continue
				}
				if s := t.metricSeries(sig, &c); s != nil {
					t.e.AddValue(s, int64(dp.Timestamp()), q.Value())
				}
			}
		}
	}
}

func (t *Extractor) metricSeries(sig *anomaly.Signal, c *metricCtx) *anomaly.Series {
	k := anomaly.Key{Signal: sig, Edge: anomaly.EdgeKey{Family: anomaly.FamilyMetric, H: mix(c.rid ^ mix(c.pid))}, Sub: c.name}
	if s := t.e.Lookup(&k); s != nil {
		return s
	}
	return t.e.Create(&k, t.metricIdentity(sig, c))
}

func (t *Extractor) metricIdentity(sig *anomaly.Signal, c *metricCtx) anomaly.Identity {
	id := anomaly.Identity{Signal: c.name, Unit: c.unit}
	var point []string
	add := func(m pcommon.Map, label bool) {
		m.Range(func(k string, v pcommon.Value) bool {
			if _, skip := t.exclude[k]; skip {
				return true
			}
			a := anomaly.Attr{Key: k, Value: v.AsString()}
			if v.Type() == pcommon.ValueTypeInt {
				a = anomaly.Attr{Key: k, Int: v.Int(), IsInt: true}
			}
			id.Attrs = append(id.Attrs, a)
			if label {
				point = append(point, k+"="+v.AsString())
			}
			return true
		})
	}
	add(c.res, false)
	add(c.attrs, true)
	sort.SliceStable(id.Attrs, func(i, j int) bool { return id.Attrs[i].Key < id.Attrs[j].Key })
	sort.Strings(point)
	id.Edge = resourceName(c.res, true, t.exclude)
	if len(point) > 0 {
		if id.Edge != "" {
			id.Edge += " "
		}
		id.Edge += "{" + strings.Join(point, ", ") + "}"
	}
	if id.Edge == "" {
		id.Edge = "(no attributes)"
	}
	switch sig.Kind {
	case anomaly.Rate:
		id.What = c.name + " rate"
		id.Unit = rateUnit(c.unit)
	case anomaly.Gauge:
		id.What = c.name
		if sig.Measure == "p50" || sig.Measure == "p99" {
			id.What = sig.Measure + " " + c.name
		}
	default:
		id.What = sig.Measure + " " + c.name
	}
	id.Subject = id.What + " for " + id.Edge
	return id
}

func rateUnit(u string) string {
	switch u {
	case "", "1":
		return "1/s"
	}
	return u + "/s"
}

// hashMap hashes a map's attributes independently of their order: ident
// leaves out the excluded keys, full keeps them.
func (t *Extractor) hashMap(m pcommon.Map, salt uint64) (ident, full uint64) {
	ident, full = salt, salt
	m.Range(func(k string, v pcommon.Value) bool {
		h := mix(maphash.String(t.seed, k) ^ mix(t.hashValue(v)))
		full += h
		if _, skip := t.exclude[k]; !skip {
			ident += h
		}
		return true
	})
	return mix(ident), mix(full)
}

func (t *Extractor) hashValue(v pcommon.Value) uint64 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return maphash.String(t.seed, v.Str())
	case pcommon.ValueTypeInt:
		return uint64(v.Int()) ^ 0x1
	case pcommon.ValueTypeDouble:
		return math.Float64bits(v.Double()) ^ 0x2
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return 0x3
		}
		return 0x4
	}
	return maphash.String(t.seed, v.AsString()) ^ 0x5
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// Names of the sides of an edge: workload edges wherever the names are
// known. The far side's workload from the record (the receiver's cluster
// view puts it there: for a Service address, the workload of the backend
// that answered, so traffic sent to the wrong pods shows as another edge),
// else its Service, pod or node; for the side on this node, the resource's
// workload (k8sattributes puts it there, by the same naming rules as the
// view), else its pod or executable — not its service.name, which the peer's
// side of the same connection cannot carry (the client's and the server's
// records of one connection would be two edges); else the address.
var (
	sideNameKeys = map[string][]string{
		semconv.SideSource: {semconv.OnSide(semconv.SideSource, semconv.AttrK8sWorkloadName), semconv.OnSide(semconv.SideSource, semconv.AttrPodName),
			semconv.OnSide(semconv.SideSource, semconv.AttrNodeName)},
		semconv.SideDestination: {semconv.OnSide(semconv.SideDestination, semconv.AttrK8sWorkloadName), semconv.OnSide(semconv.SideDestination, semconv.AttrK8sServiceName),
			semconv.OnSide(semconv.SideDestination, semconv.AttrPodName), semconv.OnSide(semconv.SideDestination, semconv.AttrNodeName)},
	}
	localNameKeys = []string{
		semconv.AttrDeploymentName, semconv.AttrStatefulSetName, semconv.AttrDaemonSetName, semconv.AttrCronJobName, semconv.AttrJobName,
		semconv.AttrPodName, semconv.AttrProcessExecName,
	}
	resourceNameKeys = []string{
		semconv.AttrServiceName, semconv.AttrDeploymentName, semconv.AttrStatefulSetName, semconv.AttrDaemonSetName,
		semconv.AttrCronJobName, semconv.AttrJobName, semconv.AttrPodName, semconv.AttrProcessExecName,
	}
	resourceAddrKeys = []string{semconv.AttrPodIP, semconv.AttrHostName}
)

func sideName(a, res pcommon.Map, side string, local bool) string {
	for _, k := range sideNameKeys[side] {
		if v := str(a, k); v != "" {
			return v
		}
	}
	if local {
		if v := firstName(res, localNameKeys); v != "" {
			return v
		}
	}
	addrKey := semconv.AttrSrcAddr
	if side == semconv.SideDestination {
		addrKey = semconv.AttrDstAddr
	}
	if v := str(a, addrKey); v != "" {
		return v
	}
	return "?"
}

// resourceName names a resource by its service or workload; withAddr
// falls back to its pod IP or host name. Keys in exclude are not used.
func resourceName(res pcommon.Map, withAddr bool, exclude map[string]struct{}) string {
	keys := resourceNameKeys
	if withAddr {
		keys = append(keys[:len(keys):len(keys)], resourceAddrKeys...)
	}
	for _, k := range keys {
		if _, skip := exclude[k]; skip {
			continue
		}
		if v := str(res, k); v != "" && !strings.HasPrefix(v, "unknown_service") {
			return v
		}
	}
	return ""
}

// firstName is the first of keys res has, unknown_service aside.
func firstName(res pcommon.Map, keys []string) string {
	for _, k := range keys {
		if v := str(res, k); v != "" && !strings.HasPrefix(v, "unknown_service") {
			return v
		}
	}
	return ""
}

// hasPeer reports whether the record carries the identity of the given
// side as a workload of this node (whose own record reports the same
// connection).
func hasPeer(a pcommon.Map, side string) bool {
	for _, k := range [...]string{semconv.AttrContainerID, semconv.AttrPodUID, semconv.AttrProcessPID} {
		if _, ok := a.Get(semconv.OnSide(side, k)); ok {
			return true
		}
	}
	return false
}

func str(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return v.AsString()
}

func firstStr(m pcommon.Map, keys ...string) string {
	for _, k := range keys {
		if v := str(m, k); v != "" {
			return v
		}
	}
	return ""
}

func intv(m pcommon.Map, k string) (int64, bool) {
	v, ok := m.Get(k)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeDouble:
		return int64(v.Double()), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func num(m pcommon.Map, k string) (float64, bool) {
	v, ok := m.Get(k)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	case pcommon.ValueTypeDouble:
		return v.Double(), true
	case pcommon.ValueTypeStr:
		f, err := strconv.ParseFloat(v.Str(), 64)
		return f, err == nil
	}
	return 0, false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
