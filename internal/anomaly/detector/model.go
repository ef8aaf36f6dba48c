package detector

// Forecast is a model's one-step-ahead view of a point, made from the points
// before it.
type Forecast struct {
	// Expected is the predicted value.
	Expected float64
	// Scale is the model's typical absolute error (a robust, outlier-clipped
	// mean absolute error of its past forecasts).
	Scale float64
	// Skill is the model's plain (unclipped) mean absolute error: how well
	// it has explained the series, big misses included. When nothing is
	// surprising, the expected value reported is the most skilled model's.
	Skill float64
	// Ready is false while the model has not seen enough data to forecast.
	Ready bool
}

// errScale tracks a model's typical absolute error: an exponentially weighted
// mean of |error|, with each error clipped at outlierErrors times the
// current mean so that one outlier cannot inflate it.
type errScale struct {
	mae   float64 // clipped: the scale deviations are measured in
	skill float64 // unclipped: used to choose the expected value to report
	n     uint32
}

// outlierErrors: an error beyond this many typical errors is an outlier to
// the estimates (the error scale, a robust level, a seasonal slot), which
// take it as if it were only this large. Four mean absolute errors are 3.2
// standard deviations of Gaussian noise (one point in 700): ordinary noise
// is hardly ever clipped.
const outlierErrors = 4.0

func (s *errScale) update(absErr float64) {
	if s.n == 0 {
		s.mae, s.skill, s.n = absErr, absErr, 1
		return
	}
	// Adapt fast at first (running mean), then at rate scaleAlpha.
	a := 1 / float64(s.n+1)
	if a < scaleAlpha {
		a = scaleAlpha
	}
	s.skill += a * (absErr - s.skill)
	if c := outlierErrors * s.scale(); c > 0 && absErr > c {
		absErr = c
	}
	s.mae += a * (absErr - s.mae)
	if s.n < 1<<31 {
		s.n++
	}
}

// scale is the typical error deviations are measured in: the clipped mean,
// but at least 1/outlierErrors of the plain one. When most of a series'
// error comes from points the clip calls outliers (a flat line with spikes,
// a count that is mostly zero), those points are its typical errors: the
// clipped mean alone would shrink towards zero between them, and every
// ordinary spike would look larger than the last.
func (s *errScale) scale() float64 {
	return max(s.mae, s.skill/outlierErrors)
}
