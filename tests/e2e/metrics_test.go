//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Metric attributes that would explode cardinality: never on metrics.
var forbiddenMetricAttrs = []string{"source.address", "destination.address", "source.port", "client.address", "client.port"}

func checkMetrics(t *testing.T, points []point, a, b *pod) {
	if len(points) == 0 {
		t.Fatal("no metric data points exported")
	}
	byName := map[string][]point{}
	for _, p := range points {
		byName[p.Metric] = append(byName[p.Metric], p)
		for _, k := range forbiddenMetricAttrs {
			if _, ok := p.Attrs[k]; ok {
				t.Errorf("metric %s carries %s (raw addresses/client ports are forbidden on metrics)", p.Metric, k)
			}
		}
	}
	for _, name := range []string{"ebpfflow.network.flow.bytes", "ebpfflow.network.flow.packets", "ebpfflow.network.drops"} {
		if len(byName[name]) == 0 {
			t.Errorf("metric %s not exported (have %v)", name, keys(byName))
		}
	}

	// Cumulative sums: per series, values never decrease while the start
	// time stays (a series forgotten when idle may restart with a new one).
	for _, name := range []string{"ebpfflow.network.flow.bytes", "ebpfflow.network.flow.packets", "ebpfflow.network.drops"} {
		last := map[string]point{}
		for _, p := range byName[name] {
			if p.Type != pmetric.MetricTypeSum || p.Temporal != pmetric.AggregationTemporalityCumulative || !p.Monotone {
				t.Errorf("%s: want a cumulative monotonic sum, got %v %v monotonic=%v", name, p.Type, p.Temporal, p.Monotone)
				break
			}
			if p.Start.IsZero() || p.Start.After(p.Time) {
				t.Errorf("%s: start time %v not before point time %v", name, p.Start, p.Time)
			}
			s := p.series()
			if prev, ok := last[s]; ok && prev.Start.Equal(p.Start) && p.Value < prev.Value {
				t.Errorf("%s: cumulative value went down %v -> %v for %s", name, prev.Value, p.Value, s)
			}
			last[s] = p
		}
	}

	// Pod a (client) received both HTTP bodies on destination port 8080.
	recv := latestSum(byName["ebpfflow.network.flow.bytes"], func(p point) bool {
		return p.Resource["k8s.pod.uid"] == a.UID && attrInt(p.Attrs["destination.port"]) == httpPort &&
			p.Attrs["network.transport"] == "tcp" && p.Attrs["network.io.direction"] == "receive"
	})
	if recv < blob4Size+blob6Size {
		t.Errorf("ebpfflow.network.flow.bytes{k8s.pod.uid=a, destination.port=8080, direction=receive} = %v, want >= %d (both bodies)",
			recv, blob4Size+blob6Size)
	} else {
		t.Logf("flow.bytes received by pod a from port 8080: %v (bodies %d)", recv, blob4Size+blob6Size)
	}
	// Pod b (server) transmitted them.
	sent := latestSum(byName["ebpfflow.network.flow.bytes"], func(p point) bool {
		return p.Resource["k8s.pod.uid"] == b.UID && attrInt(p.Attrs["destination.port"]) == httpPort &&
			p.Attrs["network.io.direction"] == "transmit"
	})
	if sent < blob4Size+blob6Size {
		t.Errorf("ebpfflow.network.flow.bytes{k8s.pod.uid=b, destination.port=8080, direction=transmit} = %v, want >= %d", sent, blob4Size+blob6Size)
	}
	udp := latestSum(byName["ebpfflow.network.flow.bytes"], func(p point) bool {
		return p.Resource["k8s.pod.uid"] == a.UID && attrInt(p.Attrs["destination.port"]) == udpPort &&
			p.Attrs["network.transport"] == "udp" && p.Attrs["network.io.direction"] == "transmit"
	})
	if want := float64(udpCount * (udpPayload + 28)); udp != want {
		t.Errorf("ebpfflow.network.flow.bytes{pod a, udp, destination.port=%d, transmit} = %v, want %v", udpPort, udp, want)
	}
	drops := latestSum(byName["ebpfflow.network.drops"], func(p point) bool {
		return p.Attrs["ebpfflow.drop.reason"] == "NETFILTER_DROP"
	})
	if drops < 2 {
		t.Errorf("ebpfflow.network.drops{reason=NETFILTER_DROP} = %v, want >= 2", drops)
	}
}

// latestSum adds up the last value of every series that matches.
func latestSum(points []point, match func(point) bool) float64 {
	last := map[string]float64{}
	for _, p := range points {
		if match(p) {
			last[p.series()] = p.Value
		}
	}
	var sum float64
	for _, v := range last {
		sum += v
	}
	return sum
}

func attrInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return -1
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkSelfTelemetry reads the collector's own Prometheus endpoint: the
// receiver's mdatagen telemetry must be there, so loss is visible.
func checkSelfTelemetry(t *testing.T, text string) {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "ebpfflow_") && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	t.Logf("self-telemetry (%s):\n%s", time.Now().Format(time.TimeOnly), strings.Join(lines, "\n"))
	// ebpfflow_events_lost is not required: it may have no series while
	// nothing has been lost.
	for _, want := range []string{"ebpfflow_events", "ebpfflow_flows_active"} {
		found := false
		for _, l := range lines {
			found = found || strings.Contains(l, want)
		}
		if !found {
			t.Errorf("self-telemetry lacks %s", want)
		}
	}
	for _, probe := range []string{"flow", "tcp", "drop"} {
		found := false
		for _, l := range lines {
			found = found || (strings.Contains(l, "ebpfflow_events") && strings.Contains(l, `probe="`+probe))
		}
		if !found {
			t.Errorf("self-telemetry: no ebpfflow_events series for probe %q", probe)
		}
	}
}
