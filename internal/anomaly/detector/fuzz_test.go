package detector

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// FuzzObserve feeds arbitrary float64 sequences (NaN, ±Inf, huge, tiny,
// negative zero) with arbitrary time steps, including repeated and
// backwards timestamps. Observe must never panic, never return a score
// outside [0,1] or a NaN score, count every non-finite value as skipped,
// and keep its state size.
func FuzzObserve(f *testing.F) {
	seed := func(vs ...float64) []byte {
		b := make([]byte, 0, 10*len(vs))
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
			b = binary.LittleEndian.AppendUint16(b, 300)
		}
		return b
	}
	f.Add(seed(1, 2, 3))
	f.Add(seed(math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1)))
	f.Add(seed(math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1e308, -1e308))
	f.Add(seed(1e-300, 1e300, 1e-300, 1e300))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig()
		cfg.Warmup = 2 // score early so the fuzzer reaches the scoring paths
		d := New(cfg)
		size := d.StateBytes()
		ts := time.Unix(1700000000, 0)
		var finite, skipped uint64
		// Repeat the input so the models become ready.
		for rep := 0; rep < 8; rep++ {
			for b := data; len(b) >= 10; b = b[10:] {
				v := math.Float64frombits(binary.LittleEndian.Uint64(b))
				ts = ts.Add(time.Duration(int16(binary.LittleEndian.Uint16(b[8:]))) * time.Second)
				r := d.Observe(ts, v)
				if math.IsNaN(v) || math.IsInf(v, 0) {
					skipped++
					if !r.Skipped || r.Score != 0 || r.Anomalous {
						t.Fatalf("non-finite %v not skipped: %+v", v, r)
					}
					continue
				}
				finite++
				if r.Skipped || math.IsNaN(r.Score) || r.Score < 0 || r.Score > 1 {
					t.Fatalf("Observe(%v) = %+v", v, r)
				}
			}
		}
		if st := d.Stats(); st.Points != finite || st.Skipped != skipped {
			t.Fatalf("stats %+v, want %d points, %d skipped", st, finite, skipped)
		}
		if d.StateBytes() != size {
			t.Fatalf("state grew from %d to %d bytes", size, d.StateBytes())
		}
	})
}
