package detector

import "math"

// levelModel predicts the next point as an exponentially weighted moving
// average of the past ones: the baseline of a series without a cycle. A high
// alpha follows the last few points (steps and spikes stand out at once); a
// low one gives a steadier baseline for noisy series.
//
// A robust level (robust set) is not dragged by a lone spike: a point
// beyond outlierErrors typical errors moves it as if it were only that far,
// unless the point before it was beyond on the same side too (a step, which
// it follows from its second point). Otherwise every ordinary spike of a
// spiky series would be followed by a string of points "below the level"
// that are nothing but the level coming back down. A model of the last few
// points needs no such care: it forgets a spike within a point or two.
type levelModel struct {
	alpha  float64
	level  float64
	err    errScale
	n      uint32
	robust bool
	beyond int8 // side (±1) of the last point when it was beyond outlierErrors, else 0
}

func newLevelModel(alpha float64, robust bool) levelModel {
	return levelModel{alpha: alpha, robust: robust}
}

// step returns the forecast for x made from the points before it, then
// learns x.
func (m *levelModel) step(x float64) Forecast {
	if m.n == 0 {
		m.level, m.n = x, 1
		return Forecast{Expected: x}
	}
	f := Forecast{Expected: m.level, Scale: m.err.scale(), Skill: m.err.skill, Ready: m.n >= minModelPoints}
	e := x - m.level
	m.err.update(math.Abs(e))
	if m.robust {
		e = clipLone(e, f.Scale, &m.beyond)
	}
	m.level += m.alpha * e
	if m.n < math.MaxUint32 {
		m.n++
	}
	return f
}

// clipLone limits error e to outlierErrors typical errors (scale) when it
// is the first of a run beyond that on its side; *beyond remembers the side
// of the last point.
func clipLone(e, scale float64, beyond *int8) float64 {
	c := outlierErrors * scale
	if !(c > 0) || math.Abs(e) <= c {
		*beyond = 0
		return e
	}
	side := int8(1)
	if e < 0 {
		side = -1
	}
	if *beyond == side {
		return e
	}
	*beyond = side
	return math.Copysign(c, e)
}
