//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// logRecord is one exported log record flattened with its resource.
type logRecord struct {
	Event    string
	Time     time.Time
	Resource map[string]any
	Attrs    map[string]any
}

func (r logRecord) str(k string) string {
	v, _ := r.Attrs[k].(string)
	return v
}

func (r logRecord) int(k string) int64 {
	switch v := r.Attrs[k].(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

func (r logRecord) float(k string) float64 {
	switch v := r.Attrs[k].(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

func (r logRecord) res(k string) string {
	v, _ := r.Resource[k].(string)
	return v
}

func (r logRecord) String() string {
	keys := make([]string, 0, len(r.Attrs))
	for k := range r.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s resource=%v {", r.Time.Format("15:04:05.000"), r.Event, r.Resource)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%v", k, r.Attrs[k])
	}
	b.WriteString("}")
	return b.String()
}

// completeLines returns the newline-terminated lines of a file the exporter
// may still be writing (a partial last line is left for the next read).
func completeLines(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		return nil, nil
	}
	var lines [][]byte
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 1<<20), 1<<30)
	for s.Scan() {
		if len(bytes.TrimSpace(s.Bytes())) > 0 {
			lines = append(lines, bytes.Clone(s.Bytes()))
		}
	}
	return lines, s.Err()
}

// readLogs parses the file exporter's JSON lines (one OTLP request each).
func readLogs(path string) ([]logRecord, error) {
	lines, err := completeLines(path)
	if err != nil {
		return nil, err
	}
	var out []logRecord
	var u plog.JSONUnmarshaler
	for n, line := range lines {
		ld, err := u.UnmarshalLogs(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n+1, err)
		}
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			res := rl.Resource().Attributes().AsRaw()
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					out = append(out, logRecord{
						Event:    lr.EventName(),
						Time:     lr.Timestamp().AsTime(),
						Resource: res,
						Attrs:    lr.Attributes().AsRaw(),
					})
				}
			}
		}
	}
	return out, nil
}

// point is one number data point of a sum, in export order.
type point struct {
	Metric   string
	Resource map[string]any
	Attrs    map[string]any
	Start    time.Time
	Time     time.Time
	Value    float64
	Temporal pmetric.AggregationTemporality
	Monotone bool
	Type     pmetric.MetricType
}

// series identifies a time series: metric + resource + point attributes.
func (p point) series() string {
	return fmt.Sprintf("%s %v %v", p.Metric, sortedMap(p.Resource), sortedMap(p.Attrs))
}

func sortedMap(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// readMetrics flattens every data point; histograms keep their count as Value.
func readMetrics(path string) ([]point, error) {
	lines, err := completeLines(path)
	if err != nil {
		return nil, err
	}
	var out []point
	var u pmetric.JSONUnmarshaler
	for n, line := range lines {
		md, err := u.UnmarshalMetrics(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n+1, err)
		}
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			res := rm.Resource().Attributes().AsRaw()
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					base := point{Metric: m.Name(), Resource: res, Type: m.Type()}
					switch m.Type() {
					case pmetric.MetricTypeSum:
						base.Temporal, base.Monotone = m.Sum().AggregationTemporality(), m.Sum().IsMonotonic()
						dps := m.Sum().DataPoints()
						for d := 0; d < dps.Len(); d++ {
							out = append(out, numberPoint(base, dps.At(d)))
						}
					case pmetric.MetricTypeGauge:
						dps := m.Gauge().DataPoints()
						for d := 0; d < dps.Len(); d++ {
							out = append(out, numberPoint(base, dps.At(d)))
						}
					case pmetric.MetricTypeHistogram:
						base.Temporal = m.Histogram().AggregationTemporality()
						dps := m.Histogram().DataPoints()
						for d := 0; d < dps.Len(); d++ {
							dp := dps.At(d)
							p := base
							p.Attrs, p.Start, p.Time, p.Value = dp.Attributes().AsRaw(), dp.StartTimestamp().AsTime(), dp.Timestamp().AsTime(), float64(dp.Count())
							out = append(out, p)
						}
					}
				}
			}
		}
	}
	return out, nil
}

func numberPoint(base point, dp pmetric.NumberDataPoint) point {
	p := base
	p.Attrs, p.Start, p.Time = dp.Attributes().AsRaw(), dp.StartTimestamp().AsTime(), dp.Timestamp().AsTime()
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		p.Value = float64(dp.IntValue())
	} else {
		p.Value = dp.DoubleValue()
	}
	return p
}
