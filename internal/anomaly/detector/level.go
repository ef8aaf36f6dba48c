package detector

import (
	"math"
	"time"
)

// levelModel predicts the next point as an exponentially weighted moving
// average of the past ones: the baseline of a series without a cycle. A high
// alpha follows the last few points (steps and spikes stand out at once); a
// low one gives a steadier baseline for noisy series.
type levelModel struct {
	alpha float64
	level float64
	err   errScale
	n     uint32
}

func newLevelModel(alpha float64) levelModel {
	return levelModel{alpha: alpha}
}

func (m *levelModel) Step(_ time.Time, x float64) Forecast {
	if m.n == 0 {
		m.level, m.n = x, 1
		return Forecast{Expected: x}
	}
	f := Forecast{Expected: m.level, Scale: m.err.mae, Skill: m.err.skill, Ready: m.n >= minModelPoints}
	e := x - m.level
	m.err.update(math.Abs(e))
	m.level += m.alpha * e
	if m.n < math.MaxUint32 {
		m.n++
	}
	return f
}
