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
	alpha    float64
	level    float64
	err      errScale
	n        uint32
	last     int64   // unix nanoseconds of the last point
	interval float64 // typical nanoseconds between points
}

func newLevelModel(alpha float64) levelModel {
	return levelModel{alpha: alpha}
}

func (m *levelModel) Step(t time.Time, x float64) Forecast {
	now := t.UnixNano()
	dt := float64(now - m.last)
	m.last = now
	if m.n == 0 {
		m.level, m.n = x, 1
		return Forecast{Expected: x}
	}
	gap := false
	if dt > 0 {
		// A gap longer than the model's memory (1/alpha points): what it
		// remembers is no longer the level just before this point (a
		// daily cycle has moved on, a source has restarted). It starts
		// again from this point, which it does not judge, and keeps what
		// it has learnt of its errors.
		gap = m.interval > 0 && m.n >= minModelPoints && dt > m.interval/m.alpha
		if m.interval == 0 {
			m.interval = dt
		} else {
			// A gap does not stretch the typical interval.
			m.interval += intervalAlpha * (math.Min(dt, 2*m.interval) - m.interval)
		}
	}
	if gap {
		m.level = x
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
