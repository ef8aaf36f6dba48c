// Command otlpsend sends one OTLP record — a span, a cumulative sum point or a
// log record — over OTLP/HTTP with protobuf bodies, as the collector's
// otlphttp exporter does, so the backends' smoke tests can read it back through
// each backend's own query API. It fails on any non-2xx answer or on a partial
// success that rejected the record, and prints the ids and timestamp it used as
// key=value pairs.
//
//	otlpsend -signal traces -url http://127.0.0.1:4318/v1/traces -service svc -name op -attr k=v
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
)

type attrs map[string]string

func (a attrs) String() string { return fmt.Sprint(map[string]string(a)) }

func (a attrs) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	a[k] = v
	return nil
}

func main() {
	signal := flag.String("signal", "", "traces, metrics or logs")
	url := flag.String("url", "", "full OTLP/HTTP URL, e.g. http://127.0.0.1:4318/v1/traces")
	service := flag.String("service", "otlpsend", "service.name resource attribute")
	name := flag.String("name", "otlpsend", "span name, metric name or log body")
	value := flag.Float64("value", 1, "the sum's value (metrics)")
	traceID := flag.String("trace-id", "", "32 hex digits (default: random)")
	at := attrs{}
	flag.Var(at, "attr", "key=value attribute of the span, point or log record (repeatable)")
	flag.Parse()
	if err := run(*signal, *url, *service, *name, *value, *traceID, at); err != nil {
		fmt.Fprintln(os.Stderr, "otlpsend:", err)
		os.Exit(1)
	}
}

func run(signal, url, service, name string, value float64, traceHex string, at attrs) error {
	if url == "" {
		return errors.New("-url is required")
	}
	var tid pcommon.TraceID
	if traceHex == "" {
		_, _ = rand.Read(tid[:])
	} else if b, err := hex.DecodeString(traceHex); err != nil || len(b) != len(tid) {
		return fmt.Errorf("-trace-id %q: want 32 hex digits", traceHex)
	} else {
		copy(tid[:], b)
	}
	var sid pcommon.SpanID
	_, _ = rand.Read(sid[:])
	now := time.Now()
	ts := pcommon.NewTimestampFromTime(now)

	res := pcommon.NewResource()
	res.Attributes().PutStr(semconv.AttrServiceName, service)
	var body []byte
	var err error
	var decode func([]byte) (rejected int64, msg string, err error)
	switch signal {
	case "traces":
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		res.CopyTo(rs.Resource())
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetName(name)
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-5 * time.Millisecond)))
		sp.SetEndTimestamp(ts)
		putAll(sp.Attributes(), at)
		body, err = ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		decode = func(b []byte) (int64, string, error) {
			r := ptraceotlp.NewExportResponse()
			err := r.UnmarshalProto(b)
			return r.PartialSuccess().RejectedSpans(), r.PartialSuccess().ErrorMessage(), err
		}
	case "metrics":
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		res.CopyTo(rm.Resource())
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(name)
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Minute)))
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(value)
		putAll(dp.Attributes(), at)
		body, err = pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		decode = func(b []byte) (int64, string, error) {
			r := pmetricotlp.NewExportResponse()
			err := r.UnmarshalProto(b)
			return r.PartialSuccess().RejectedDataPoints(), r.PartialSuccess().ErrorMessage(), err
		}
	case "logs":
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		res.CopyTo(rl.Resource())
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetTimestamp(ts)
		lr.SetObservedTimestamp(ts)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr(name)
		lr.SetTraceID(tid)
		lr.SetSpanID(sid)
		putAll(lr.Attributes(), at)
		body, err = plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
		decode = func(b []byte) (int64, string, error) {
			r := plogotlp.NewExportResponse()
			err := r.UnmarshalProto(b)
			return r.PartialSuccess().RejectedLogRecords(), r.PartialSuccess().ErrorMessage(), err
		}
	default:
		return fmt.Errorf("-signal %q: want traces, metrics or logs", signal)
	}
	if err != nil {
		return err
	}

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, strings.TrimSpace(string(rb)))
	}
	// Some servers answer 2xx with an empty or non-protobuf body; only a
	// well-formed partial success that rejected something is a failure (a
	// message without rejections is a warning, as the OTLP spec has it).
	if rejected, msg, derr := decode(rb); derr == nil && rejected > 0 {
		return fmt.Errorf("POST %s: partial success: %d rejected: %s", url, rejected, msg)
	} else if derr == nil && msg != "" {
		fmt.Fprintf(os.Stderr, "otlpsend: warning from %s: %s\n", url, msg)
	}
	fmt.Printf("trace_id=%s span_id=%s time_unix_nano=%d\n", tid, sid, ts)
	return nil
}

func putAll(m pcommon.Map, at attrs) {
	for k, v := range at {
		m.PutStr(k, v)
	}
}
