package pdatabuild

import (
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/metadata"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// dnsAttrCount is the exact number of attributes putDNS and newEvent write.
func dnsAttrCount(l *observed.DNSLookup) int {
	n := 1 + 11 // event.name; name, type, id, rcode, answers, duration, client×2, server×2, transport
	if l.Client.Addr().IsValid() {
		n++ // network.type
	}
	if l.RCode != semconv.DNSRCodeOK {
		n++
	}
	if l.Responder.IsValid() {
		n += 2
	}
	if l.Truncated {
		n++
	}
	if l.Retransmits > 0 {
		n++
	}
	if len(l.Records) > 0 {
		n++
	}
	return n
}

func (t *Builder) putDNS(m pcommon.Map, l *observed.DNSLookup) {
	m.PutStr(semconv.AttrDNSQuestionName, l.Name)
	m.PutStr(semconv.AttrDNSQuestionType, l.Type)
	m.PutInt(semconv.AttrDNSID, int64(l.ID))
	m.PutStr(semconv.AttrDNSRCode, l.RCode)
	if l.RCode != semconv.DNSRCodeOK {
		m.PutStr(semconv.AttrErrorType, l.RCode)
	}
	answers := m.PutEmptySlice(semconv.AttrDNSAnswers)
	answers.EnsureCapacity(len(l.Answers))
	for _, a := range l.Answers {
		answers.AppendEmpty().SetStr(a)
	}
	if len(l.Records) > 0 {
		records := m.PutEmptySlice(semconv.AttrDNSRecords)
		records.EnsureCapacity(len(l.Records))
		for _, r := range l.Records {
			records.AppendEmpty().SetStr(r)
		}
	}
	m.PutDouble(semconv.AttrDNSDuration, l.Duration.Seconds())
	m.PutStr(semconv.AttrTransport, l.Transport.String())
	if nt := networkType(l.Client.Addr()); nt != "" {
		m.PutStr(semconv.AttrNetworkType, nt)
	}
	m.PutStr(semconv.AttrClientAddr, t.addrString(l.Client.Addr()))
	m.PutInt(semconv.AttrClientPort, int64(l.Client.Port()))
	m.PutStr(semconv.AttrServerAddr, t.addrString(l.Server.Addr()))
	m.PutInt(semconv.AttrServerPort, int64(l.Server.Port()))
	if l.Responder.IsValid() {
		m.PutStr(semconv.AttrDNSRespAddr, t.addrString(l.Responder.Addr()))
		m.PutInt(semconv.AttrDNSRespPort, int64(l.Responder.Port()))
	}
	if l.Truncated {
		m.PutBool(semconv.AttrDNSTruncated, true)
	}
	if l.Retransmits > 0 {
		m.PutInt(semconv.AttrDNSRetransmits, int64(l.Retransmits))
	}
}

// addDNS feeds dns.lookup.duration. The resolver's address is a metric
// attribute on purpose: "which resolver is slow" is the question, and a
// node talks to a handful of them.
func (t *Builder) addDNS(l *observed.DNSLookup) {
	e := edge{
		transport: l.Transport.String(),
		server:    l.Server.Addr().Unmap().String(),
		qtype:     l.Type,
	}
	if l.RCode != semconv.DNSRCodeOK {
		e.errorType = l.RCode
	}
	if t.cfg.DNSQuestionNameOnMetrics {
		e.qname = l.Name
	}
	t.observe(metricResource(l.Local), metricDNSDuration, e, l.Duration.Seconds())
}

// Traces returns one CLIENT span "DNS {qtype}" per lookup, from the query
// leaving the socket to its answer (or the timeout), and one SERVER or
// CLIENT span per HTTP exchange (http.go), grouped into one ResourceSpans
// per local workload. Each lookup is its own trace: the kernel does not
// know the application's trace context.
func (t *Builder) Traces(r observed.Report) ptrace.Traces {
	td := ptrace.NewTraces()
	// Each span's workload is found first and each workload's spans
	// counted, so that its span slice is sized once: appending thousands
	// of spans one by one regrows and recopies its array a dozen times.
	n := len(r.DNS) + len(r.HTTP)
	if cap(t.spanSlot) < n {
		t.spanSlot = make([]int32, n)
	}
	slot := t.spanSlot[:n]
	var (
		workloads  []observed.Workload
		counts     []int
		byWorkload map[observed.Workload]int32
		// The last two workloads found: an HTTP client and its server on
		// the node alternate, and comparing skips hashing every string of
		// the workload per span.
		recent [2]int32
	)
	recent[0], recent[1] = -1, -1
	find := func(w *observed.Workload) int32 {
		for _, i := range recent {
			if i >= 0 && workloads[i] == *w {
				return i
			}
		}
		i, ok := byWorkload[*w]
		if !ok {
			if byWorkload == nil {
				byWorkload = make(map[observed.Workload]int32)
			}
			i = int32(len(workloads))
			workloads = append(workloads, *w)
			counts = append(counts, 0)
			byWorkload[*w] = i
		}
		recent[1], recent[0] = recent[0], i
		return i
	}
	for i := range r.DNS {
		slot[i] = find(&r.DNS[i].Local)
	}
	for i := range r.HTTP {
		slot[len(r.DNS)+i] = find(&r.HTTP[i].Local)
	}
	for _, i := range slot {
		counts[i]++
	}
	spans := make([]ptrace.SpanSlice, len(workloads))
	td.ResourceSpans().EnsureCapacity(len(workloads))
	for i := range workloads {
		rs := td.ResourceSpans().AppendEmpty()
		t.putResource(rs.Resource().Attributes(), workloads[i])
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(metadata.ScopeName)
		ss.Scope().SetVersion(t.cfg.ScopeVersion)
		spans[i] = ss.Spans()
		spans[i].EnsureCapacity(counts[i])
	}
	for i := range r.DNS {
		l := &r.DNS[i]
		sp := spans[slot[i]].AppendEmpty()
		sp.SetName("DNS " + l.Type)
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetTraceID(t.traceID())
		sp.SetSpanID(t.spanID())
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(l.Start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(l.Start.Add(l.Duration)))
		p := t.dnsPeer(l)
		sp.Attributes().EnsureCapacity(dnsAttrCount(l) - 1 + p.attrCount(true))
		t.putDNS(sp.Attributes(), l)
		putSide(sp.Attributes(), semconv.SideDestination, &p)
		if l.RCode != semconv.DNSRCodeOK {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage(l.RCode)
		}
	}
	for i := range r.HTTP {
		t.putHTTPSpan(spans[slot[len(r.DNS)+i]].AppendEmpty(), &r.HTTP[i])
	}
	return td
}

// dnsLogs appends one dns.lookup record per lookup. The record's time is
// when the outcome became known (the answer, or the timeout expiring), so a
// consumer windowing by event time sees a TIMEOUT when it happens, not
// dns.timeout in the past; the query's time is Timestamp - duration (and
// the span's start). The observed time is the report's.
func (t *Builder) dnsLogs(r *observed.Report, now pcommon.Timestamp, records func(observed.Workload) plog.LogRecordSlice) {
	for i := range r.DNS {
		l := &r.DNS[i]
		p := t.dnsPeer(l)
		lr := records(l.Local).AppendEmpty()
		lr.Attributes().EnsureCapacity(dnsAttrCount(l) + p.attrCount(true))
		newEvent(lr, semconv.EventDNS, pcommon.NewTimestampFromTime(l.Start.Add(l.Duration)))
		lr.SetObservedTimestamp(now)
		if l.RCode != semconv.DNSRCodeOK {
			lr.SetSeverityNumber(plog.SeverityNumberWarn)
			lr.SetSeverityText("WARN")
		} else {
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
		}
		t.putDNS(lr.Attributes(), l)
		putSide(lr.Attributes(), semconv.SideDestination, &p)
	}
}

// dnsPeer resolves a lookup's resolver (the destination of the query; the
// asking pod is the resource).
func (t *Builder) dnsPeer(l *observed.DNSLookup) peer {
	return t.peerOf(l.Transport, l.Server, l.Backend, l.Start)
}

// traceID and spanID are random, as W3C trace context requires; a fast
// generator seeded once from crypto/rand is enough for that.
func (t *Builder) traceID() pcommon.TraceID {
	var id pcommon.TraceID
	binary.LittleEndian.PutUint64(id[:8], t.rng().Uint64())
	binary.LittleEndian.PutUint64(id[8:], t.rng().Uint64()|1) // never all zero
	return id
}

func (t *Builder) spanID() pcommon.SpanID {
	var id pcommon.SpanID
	binary.LittleEndian.PutUint64(id[:], t.rng().Uint64()|1)
	return id
}

func (t *Builder) rng() *mrand.ChaCha8 {
	if t.ids == nil {
		var seed [32]byte
		_, _ = rand.Read(seed[:]) // never fails (crypto/rand panics instead)
		t.ids = mrand.NewChaCha8(seed)
	}
	return t.ids
}
