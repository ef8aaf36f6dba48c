package anomalycomponent

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
)

// BenchmarkFlowLogs measures the processor's work per window at 10k and
// 100k series: one receiver flush of network.flow records (one client
// record per edge, three series per edge: RTT p99, traffic, retransmit
// ratio) extracted, aggregated and scored. One iteration is one window;
// points/s counts window values scored per second on one core (the engine
// is single-threaded), records/s the flow records consumed. B/series is
// the heap held per series once every series exists (detector, sketch,
// key, table).
func BenchmarkFlowLogs(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			edges := n / 3
			ld := plog.NewLogs()
			rl := ld.ResourceLogs().AppendEmpty()
			lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
			for i := range edges {
				appendFlow(lrs, t0, flowRec{src: fmt.Sprintf("10.%d.%d.1", i>>8&255, i&255), dst: "10.200.0.1",
					sport: 40000, dport: 8080, role: "client", rttMicros: 200 + int64(i%50),
					srcBytes: 150000, dstBytes: 200000, srcPkts: 100, dstPkts: 200, retrans: int64(i % 2)})
			}
			cfg := anomaly.DefaultConfig()
			cfg.MaxSeries = n + 10
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			e, err := anomaly.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			tr := NewExtractor(e)
			window := 0
			step := func() {
				ts := pcommon.NewTimestampFromTime(t0.Add(time.Duration(window) * 10 * time.Second))
				for i := 0; i < lrs.Len(); i++ {
					lrs.At(i).SetTimestamp(ts)
				}
				e.Begin(ts.AsTime().Add(time.Second))
				tr.Logs(ld)
				e.Done()
				window++
			}
			step()
			step()
			runtime.GC()
			runtime.ReadMemStats(&after)
			perSeries := float64(after.HeapAlloc-before.HeapAlloc) / float64(e.Len())
			if e.Len() != n-n%3 {
				b.Fatalf("%d series, want %d", e.Len(), n-n%3)
			}
			points := e.Stats().PointsScored.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				step()
			}
			b.StopTimer()
			scored := e.Stats().PointsScored.Load() - points
			b.ReportMetric(float64(scored)/b.Elapsed().Seconds(), "points/s")
			b.ReportMetric(float64(edges*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(perSeries, "B/series")
		})
	}
}
