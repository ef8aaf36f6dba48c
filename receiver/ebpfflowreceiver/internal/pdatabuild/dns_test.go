package pdatabuild

import (
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/ptracetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// TestTracesGolden pins the DNS CLIENT spans. Trace and span ids are random:
// they are checked for being set and distinct, then zeroed for the comparison.
func TestTracesGolden(t *testing.T) {
	got := newTranslator().Traces(firstReport())
	seen := map[pcommon.TraceID]bool{}
	forEachSpan(got, func(sp ptrace.Span) {
		assert.False(t, sp.TraceID().IsEmpty())
		assert.False(t, sp.SpanID().IsEmpty())
		assert.False(t, seen[sp.TraceID()], "trace id reused")
		seen[sp.TraceID()] = true
		sp.SetTraceID(pcommon.TraceID{})
		sp.SetSpanID(pcommon.SpanID{})
	})
	assert.Len(t, seen, len(dnsLookups()))
	path := goldenPath("traces.yaml")
	if *update {
		require.NoError(t, golden.WriteTracesToFile(path, got))
	}
	want, err := golden.ReadTraces(path)
	require.NoError(t, err)
	require.NoError(t, ptracetest.CompareTraces(want, got))
}

func forEachSpan(td ptrace.Traces, fn func(ptrace.Span)) {
	for i := range td.ResourceSpans().Len() {
		sss := td.ResourceSpans().At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				fn(spans.At(k))
			}
		}
	}
}

// TestDNSSpanShape checks what trace views rely on, independent of the golden file.
func TestDNSSpanShape(t *testing.T) {
	lookups := dnsLookups()
	td := newTranslator().Traces(observed.Report{Time: t1, DNS: lookups})
	var spans []ptrace.Span
	forEachSpan(td, func(sp ptrace.Span) { spans = append(spans, sp) })
	require.Len(t, spans, len(lookups))
	for i, sp := range spans {
		l := lookups[i]
		assert.Equal(t, "DNS "+l.Type, sp.Name())
		assert.Equal(t, ptrace.SpanKindClient, sp.Kind())
		assert.Equal(t, l.Duration, sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime()))
		rcode, _ := sp.Attributes().Get(semconv.AttrDNSRCode)
		assert.Equal(t, l.RCode, rcode.Str())
		if l.RCode == "NOERROR" {
			assert.Equal(t, ptrace.StatusCodeUnset, sp.Status().Code())
			_, has := sp.Attributes().Get(semconv.AttrErrorType)
			assert.False(t, has)
		} else {
			assert.Equal(t, ptrace.StatusCodeError, sp.Status().Code())
			et, _ := sp.Attributes().Get(semconv.AttrErrorType)
			assert.Equal(t, l.RCode, et.Str())
		}
	}
}

// TestDNSAttrCountExact keeps the preallocation honest.
func TestDNSAttrCountExact(t *testing.T) {
	tr := newTranslator()
	for _, l := range dnsLookups() {
		m := pcommon.NewMap()
		tr.putDNS(m, &l)
		assert.Equal(t, dnsAttrCount(&l)-1, m.Len(), "%s %s", l.Name, l.RCode)
	}
}

// TestDNSDurationMetric checks the histogram's attributes: resolver, qtype,
// error.type; the question name only when enabled.
func TestDNSDurationMetric(t *testing.T) {
	for _, withName := range []bool{false, true} {
		tr := New(t0, Config{NodeName: "node-1", HostName: "host-1", DNSQuestionNameOnMetrics: withName, SeriesIdleTimeout: 5 * time.Minute, MaxSeries: 100000})
		md := tr.Metrics(observed.Report{Time: t1, DNS: dnsLookups()})
		points := 0
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			ms := rms.At(i).ScopeMetrics().At(0).Metrics()
			for j := range ms.Len() {
				m := ms.At(j)
				if m.Name() != "dns.lookup.duration" {
					continue
				}
				assert.Equal(t, "s", m.Unit())
				for k := range m.Histogram().DataPoints().Len() {
					dp := m.Histogram().DataPoints().At(k)
					points++
					assert.EqualValues(t, 1, dp.Count())
					_, hasName := dp.Attributes().Get(semconv.AttrDNSQuestionName)
					assert.Equal(t, withName, hasName)
					_, hasServer := dp.Attributes().Get(semconv.AttrServerAddr)
					assert.True(t, hasServer)
					_, hasClient := dp.Attributes().Get(semconv.AttrClientAddr)
					assert.False(t, hasClient)
				}
			}
		}
		assert.Equal(t, len(dnsLookups()), points)
	}
}
