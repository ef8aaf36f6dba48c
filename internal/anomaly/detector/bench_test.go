package detector

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkObserve measures one series: the cost of a point when its state
// is in cache.
func BenchmarkObserve(b *testing.B) {
	d := New(DefaultConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = diurnal(i) + rng.NormFloat64()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Observe(t0.Add(time.Duration(i)*time.Minute), vals[i&4095])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(d.StateBytes()), "B/series")
}

// BenchmarkObserveSeries measures many series scored round-robin, as a
// processor does with one point per series per interval: the state of each
// series is out of cache when its next point comes.
func BenchmarkObserveSeries(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			ds := make([]*Detector, n)
			for i := range ds {
				ds[i] = New(DefaultConfig())
			}
			rng := rand.New(rand.NewPCG(1, 2))
			vals := make([]float64, 4096)
			for i := range vals {
				vals[i] = 100 + rng.NormFloat64()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				round := i / n
				ds[i%n].Observe(t0.Add(time.Duration(round)*time.Minute), vals[i&4095])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
		})
	}
}
