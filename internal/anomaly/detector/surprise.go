package detector

import "math"

// Surprise calibration: how rare is a deviation of size z for this series?
//
// tailHist keeps an exponentially decayed histogram of past deviations on a
// log scale (a quarter octave per bin) and answers with the fraction of past
// mass at or above z. One pseudo-point from a distribution-free reference
// tail smooths the estimate and extrapolates beyond anything seen so far: a
// deviation twice as far out as the largest one in memory is only about
// four times rarer, not exponentially so, which keeps heavy-tailed series
// from alerting on every new record. For a single point's deviation the
// reference is Cantelli's bound from the spread of the series' own past
// deviations (spread below); for the averages and run lengths it is
// Chebyshev's bound in fixed units, min(1, 1/z²). The result is a
// probability, so scores of different series are comparable and one
// threshold serves them all.

const (
	tailBins       = 48
	tailMinLog2    = -4.0 // z below 1/16 falls in the first bin
	tailBinsPerOct = 4.0
	tailPrior      = 1.0 // weight of the reference pseudo-point
	// maxDecades maps -log10(tail probability) to a score in [0,1].
	maxDecades = 10.0
)

type tailHist struct {
	decay float64 // per-point retention, 1 - 1/memory
	w     float64 // weight of the next point; grows instead of decaying all bins
	// above[i] is the mass of past deviations in bin i or higher, relative
	// to w: a tail is then read in one step. float32 keeps the state small.
	above [tailBins]float32
}

func newTailHist(memory int) tailHist {
	return tailHist{decay: 1 - 1/float64(memory), w: 1}
}

func tailBin(z float64) int {
	if !(z > 0) {
		return 0
	}
	if z > math.MaxFloat64 {
		return tailBins - 1
	}
	// log2(z) from the float's exponent and a comparison of its mantissa
	// with the quarter octaves: no logarithm on the hot path.
	frac, exp := math.Frexp(z) // z = frac * 2^exp, frac in [0.5, 1)
	m := 2 * frac
	q := 0
	switch {
	case m >= 1.681792830507429: // 2^0.75
		q = 3
	case m >= 1.4142135623730951: // 2^0.5
		q = 2
	case m >= 1.189207115002721: // 2^0.25
		q = 1
	}
	b := (exp-1-int(tailMinLog2))*int(tailBinsPerOct) + q
	if b < 0 {
		return 0
	}
	if b >= tailBins {
		return tailBins - 1
	}
	return b
}

// observe returns the probability of a deviation of at least z, then
// learns z, with Chebyshev's reference tail min(1, 1/z²).
func (h *tailHist) observe(z float64) float64 {
	ref := 1.0
	if z > 1 {
		ref = 1 / (z * z)
	}
	return h.observeRef(z, ref)
}

// observeRef is observe with the reference tail's mass ref at z.
func (h *tailHist) observeRef(z, ref float64) float64 {
	b := tailBin(z)
	above := 0.5 * float64(h.above[b]) // half of z's own bin
	if b+1 < tailBins {
		above += 0.5 * float64(h.above[b+1])
	}
	p := (above/h.w + tailPrior*ref) / (float64(h.above[0])/h.w + tailPrior)

	w := float32(h.w)
	for i := 0; i <= b; i++ {
		h.above[i] += w
	}
	h.w /= h.decay
	if h.w > 1e30 { // rescale well within float32 range
		for i := range h.above {
			h.above[i] = float32(float64(h.above[i]) / h.w)
		}
		h.w = 1
	}
	return p
}

// decades turns a tail probability into a score in [0,1].
func decades(p float64) float64 {
	if !(p > 0) {
		return 1
	}
	s := -math.Log10(p) / maxDecades
	if s < 0 {
		return 0
	}
	if s > 1 {
		return 1
	}
	return s
}

// below returns the probability of a deviation of at most z: the mass of
// past deviations below z (half of z's own bin), with the reference
// pseudo-point's min(1, z): a small deviation is only as rare as it is
// small, whatever the history, until the history says otherwise.
func (h *tailHist) below(z float64) float64 {
	tot := float64(h.above[0])
	if !(tot > 0) {
		return 1
	}
	b := tailBin(z)
	in := float64(h.above[b])
	if b+1 < tailBins {
		in -= float64(h.above[b+1])
	}
	under := tot - float64(h.above[b]) + 0.5*in
	ref := math.Min(1, math.Max(z, 0))
	return (under/h.w + tailPrior*ref) / (tot/h.w + tailPrior)
}

// spread is the mean and mean square of a model's past point deviations,
// over the memory of the histogram they are rated in, for Cantelli's
// reference tail v/(v+(z-m)²): a deviation is extrapolated to be rare by
// how far it is beyond the usual in units of the series' own spread of
// deviations. On Gaussian noise that is close to 1/z²; where the
// deviations are heavy-tailed (a spiky series, a model that is sometimes
// far off) a new record is not rare merely for being several typical
// errors out. The averages keep Chebyshev's bound in units of one typical
// error: the last 8 deviations and the slow average are serially dependent
// (consecutive values share most of their points), so their history holds
// far fewer independent values than points, and a bound sharpened by their
// small measured spread alerts on ordinary excursions.
type spread struct {
	mean, msq float64
}

// minSpread: the spread is taken as at least 1/outlierErrors of one
// typical error, the floor the error scale itself keeps (errScale.scale),
// so the deviations of a view that has hardly ever been off (a flat line)
// do not make every small change a record of many spreads.
const minSpread = 1 / outlierErrors

// observe returns the probability of a deviation of at least z in h with
// Cantelli's reference tail, then learns z, each value clipped at
// outlierErrors spreads beyond the mean so one outlier does not widen the
// reference for a whole memory.
func (sp *spread) observe(h *tailHist, z float64) float64 {
	v := max(sp.msq-sp.mean*sp.mean, minSpread*minSpread)
	ref := 1.0
	if d := z - sp.mean; d > 0 {
		ref = v / (v + d*d)
	}
	// A running mean until the histogram holds a memory's worth of mass,
	// then the histogram's own pace.
	a := 1 / (float64(h.above[0])/h.w + 1)
	zc := min(z, sp.mean+outlierErrors*math.Sqrt(v))
	sp.mean += a * (zc - sp.mean)
	sp.msq += a * (zc*zc - sp.msq)
	return h.observeRef(z, ref)
}

// surprise rates one model's deviations against that model's own history
// on up to three time scales: the point, the mean of the last sustainLen
// points (a shift whose single points are unremarkable) and a slow average
// over about driftLen points (an episode of hours whose every stretch looks
// ordinary: a holiday, a slow leak, a drifting sensor). A model that is
// routinely far off thus raises no alarm, while a model that is usually
// right raises one as soon as it is wrong by more than it has ever been.
//
// The views a model has (views) depend on what its deviations mean; their
// histograms live in the detector. For the model of the last few points
// the sustained view is two-sided: its deviations are the point-to-point
// changes of the series, and a run of them unusually small for the series
// is a series that has stopped moving (a frozen exporter, a stuck value, a
// flat line where there is always noise).
//
// The counters are 32-bit and packed with the flag so that the detector
// stays within the allocator's 5376-byte size class (the next is 6144).
type surprise struct {
	point, sustained, drift *tailHist           // nil: no such view
	spread                  spread              // of the point view's deviations
	ring                    [sustainLen]float64 // last deviations, capped at sustainCap
	driftMean               float64             // EWMA of the capped deviations
	ringPos                 int32
	warmup                  int32 // deviations to learn before scoring
	seen                    int32
	twoSided                bool // the sustained view's lower tail counts too
}

// observe returns the tail probabilities of deviation z, then learns it:
// that of the rarer of the point and sustained views, and that of the drift
// view. Both are 1 while the views are warming up.
func (s *surprise) observe(z float64) (short, drift float64) {
	p, ps, pd := 1.0, 1.0, 1.0
	if s.point != nil {
		p = s.spread.observe(s.point, z)
	}
	s.ring[s.ringPos] = math.Min(z, sustainCap)
	s.ringPos = (s.ringPos + 1) % sustainLen
	if s.sustained != nil {
		mean := 0.0
		for _, v := range s.ring {
			mean += v
		}
		mean /= sustainLen
		pl := 1.0
		if s.twoSided {
			pl = s.sustained.below(mean)
		}
		ps = min(s.sustained.observe(mean), pl)
	}
	if s.drift != nil {
		s.driftMean += (math.Min(z, sustainCap) - s.driftMean) / driftLen
		pd = s.drift.observe(s.driftMean)
	}
	if s.seen < s.warmup {
		s.seen++
		return 1, 1
	}
	return min(p, ps), pd
}
