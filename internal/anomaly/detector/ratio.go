package detector

import "math"

// ratioView measures how far a value is from the level model's forecast in
// proportion, besides by how much. Server metrics (bytes, requests, CPU)
// vary in proportion to their level: traffic that halves or stops is an
// incident even where the usual swings, counted in bytes, are larger than
// the fall; a doubling in the quiet hours is. On a ratio scale a drop to
// zero is as visible as a spike.
//
// The ratio scale is asinh(x/c): log-like for values well above c, linear
// around zero, defined for any sign. c is a tenth of the series' typical
// magnitude (at least its resolution), so a value falling to zero counts
// as a fall of about a factor ten, not an infinite one.
type ratioView struct {
	magnitude float64 // mean |x|, over about Memory points
	n         uint32
	err       errScale // typical |ratio error| of the forecasts
}

// nearZero: values below this fraction of the series' typical magnitude
// are "near zero" on the ratio scale.
const nearZero = 0.1

// learnMagnitude follows the series' typical magnitude.
func (r *ratioView) learnMagnitude(x float64, memory int) {
	if r.n < uint32(memory) {
		r.n++
	}
	r.magnitude += (math.Abs(x) - r.magnitude) / float64(r.n)
}

// deviation returns the ratio deviation of x from forecast f in units of
// its typical size, then learns it when learn is set (the forecast is one
// the model stands by).
func (r *ratioView) deviation(x, f, resolution float64, learn bool) float64 {
	c := math.Max(resolution, nearZero*r.magnitude)
	if !(c > 0) {
		return 0 // nothing but zeros so far
	}
	e := math.Abs(math.Asinh(x/c) - math.Asinh(f/c))
	s := r.err.scale()
	// The same floors as the plain deviation: 1% of the value, and the
	// caller's resolution (asinh's slope at f converts it).
	if floor := math.Max(relScaleFloor, resolution/math.Hypot(f, c)); s < floor {
		s = floor
	}
	if learn {
		r.err.update(e)
	}
	return e / s
}
