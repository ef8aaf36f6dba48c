package anomaly

import "math"

// accum aggregates one series' points within one window.
type accum struct {
	sum float64 // Rate: increments; Ratio: numerator; Gauge: sum of values
	den float64 // Ratio: denominator; Gauge: number of values
	// Rate from points with their own interval: the time covered.
	tMin, tMax int64
	sk         *sketch // Quantile
}

func (a *accum) reset() {
	a.sum, a.den, a.tMin, a.tMax = 0, 0, 0, 0
	if a.sk != nil {
		a.sk.reset()
	}
}

func (a *accum) addInterval(from, to int64) {
	if a.tMin == 0 || from < a.tMin {
		a.tMin = from
	}
	if to > a.tMax {
		a.tMax = to
	}
}

// Quantile sketch: counts in logarithmic bins a quarter octave wide (19 %),
// over 40 octaves centred on the first value a series sees, plus the exact
// minimum and maximum of the window. A quantile is interpolated within its
// bin and clamped to [min, max], so a window of one sample is exact. Fixed
// size: 160 float32 counts (640 bytes), allocated for quantile series only.
const (
	sketchBins      = 160
	sketchPerOctave = 4
)

type sketch struct {
	base     int32 // quarter-octave index of bin 0, set by the first value
	init     bool
	zero     float64 // values <= 0
	total    float64
	min, max float64
	c        [sketchBins]float32
}

func (s *sketch) reset() {
	s.zero, s.total, s.min, s.max = 0, 0, 0, 0
	clear(s.c[:])
}

func quarterOctave(v float64) int {
	return int(math.Floor(math.Log2(v) * sketchPerOctave))
}

func binLow(q int) float64 { return math.Exp2(float64(q) / sketchPerOctave) }

func (s *sketch) bin(v float64) int {
	q := quarterOctave(v)
	if !s.init {
		s.base, s.init = int32(q-sketchBins/2), true
	}
	i := q - int(s.base)
	return min(max(i, 0), sketchBins-1)
}

func (s *sketch) seen(lo, hi float64) {
	if s.total == 0 || lo < s.min {
		s.min = lo
	}
	if s.total == 0 || hi > s.max {
		s.max = hi
	}
}

// add counts one sample.
func (s *sketch) add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	s.seen(v, v)
	s.total++
	if v <= 0 {
		s.zero++
		return
	}
	s.c[s.bin(v)]++
}

// addRange spreads w samples uniformly over (lo, hi], the way a histogram
// bucket is read: linear interpolation within it. An unbounded bucket
// (hi = +Inf) puts them at lo, its only known value.
func (s *sketch) addRange(lo, hi, w float64) {
	if !(w > 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		return
	}
	if math.IsInf(hi, 1) {
		hi = lo
	}
	if math.IsInf(lo, -1) {
		lo = math.Min(hi, 0)
	}
	if hi <= 0 {
		s.seen(hi, hi)
		s.total += w
		s.zero += w
		return
	}
	if lo < 0 {
		lo = 0
	}
	s.seen(lo, hi)
	s.total += w
	if hi <= lo {
		s.c[s.bin(hi)] += float32(w)
		return
	}
	width := hi - lo
	// Walk the bins that overlap (lo, hi], from the top (s.bin sets the
	// base on a first value).
	for i := s.bin(hi); i >= 0; i-- {
		bl := binLow(int(s.base) + i)
		bh := binLow(int(s.base) + i + 1)
		if i == sketchBins-1 {
			bh = math.Inf(1)
		}
		if i == 0 {
			bl = 0 // everything below the range lands in the first bin
		}
		top, bottom := math.Min(bh, hi), math.Max(bl, lo)
		if top > bottom {
			s.c[i] += float32(w * (top - bottom) / width)
		}
		if bl <= lo {
			break
		}
	}
}

// quantile returns the q-quantile of the window, or false when it is empty.
func (s *sketch) quantile(q float64) (float64, bool) {
	if s.total <= 0 {
		return 0, false
	}
	rank := q * s.total
	if rank <= s.zero {
		return math.Max(0, s.min), true
	}
	cum := s.zero
	v := s.max
	for i := range s.c {
		c := float64(s.c[i])
		if c <= 0 {
			continue
		}
		if cum+c >= rank {
			lo, hi := binLow(int(s.base)+i), binLow(int(s.base)+i+1)
			v = lo + (rank-cum)/c*(hi-lo)
			break
		}
		cum += c
	}
	return math.Min(math.Max(v, s.min), s.max), true
}
