package detector

import (
	"math"
	"time"
)

// Slots of the seasonal profiles: a day in 5-minute bins, a week in hours.
const (
	dailyBins  = 288
	weeklyBins = 168
)

// seasonalModel predicts a point from the same phase of past cycles: one
// slot per phase bin of the period (time of day for a daily cycle, hour of
// week for a weekly one), each an exponentially weighted average across
// cycles. Binning by timestamp rather than by point count keeps the state
// bounded whatever the sampling interval, and needs no period search:
// operational traffic follows the clock. The slots live in the detector
// (prof, cnt point into it), sized for the period.
//
// A slot starts as the plain mean of its first points and turns into the
// weighted average once that weights old cycles less: otherwise its first
// point, weighted by nearly all the slot's rate spread over the many points
// a bin may hold in a cycle, would stand for the whole first cycle (one
// spike in the first week would be "expected" every week after). Once the
// profile is ready, a lone outlier moves a slot only as far as
// outlierErrors typical errors (clipLone), so that a spike is not expected
// again at the same time the next day.
//
// Until the profile has seen a whole cycle it forecasts nothing of its
// own: it passes on a fallback forecast (the daily profile's is the level
// model's, the weekly one's is the daily profile's), and its error scale
// learns from that forecast's errors. When it becomes ready, its
// deviations are then measured in units of errors of the same kind, and
// judged against a history of them, rather than against the handful of
// its own first errors.
type seasonalModel struct {
	period   int64   // seconds
	gamma    float64 // profile learning rate, per cycle
	interval float64 // typical seconds between points (EWMA)
	start    int64   // unix seconds of the first point
	last     int64
	n        uint32
	beyond   int8 // clipLone's memory
	err      errScale
	prof     []float32 // NaN: bin not seen yet
	cnt      []uint8   // points learnt by the slot, saturating
}

func newSeasonalModel(period time.Duration, gamma float64, prof []float32, cnt []uint8) seasonalModel {
	m := seasonalModel{period: int64(period / time.Second), gamma: gamma, prof: prof, cnt: cnt}
	for i := range m.prof {
		m.prof[i] = float32(math.NaN())
	}
	return m
}

func (m *seasonalModel) bin(sec int64) int {
	p := sec % m.period
	if p < 0 {
		p += m.period
	}
	return int(p * int64(len(m.prof)) / m.period)
}

// step returns the forecast for x at t made from the points before it,
// then learns x; fb is the fallback forecast used until the profile has
// seen a cycle.
func (m *seasonalModel) step(t time.Time, x float64, fb Forecast) Forecast {
	sec := t.Unix()
	if m.n == 0 {
		m.start, m.last = sec, sec
	} else if dt := float64(sec - m.last); dt > 0 {
		if m.interval == 0 {
			m.interval = dt
		} else {
			m.interval += intervalAlpha * (dt - m.interval)
		}
		m.last = sec
	}
	if m.n < math.MaxUint32 {
		m.n++
	}
	ready := m.n > minModelPoints && sec-m.start >= m.period
	bins := len(m.prof)
	ph := sec % m.period
	if ph < 0 {
		ph += m.period
	}
	pos := float64(ph) * float64(bins) / float64(m.period) // in bins
	b := min(int(pos), bins-1)
	// Several points may fall in one bin per cycle: spread the per-cycle
	// rate over them, and read the profile between the centres of the two
	// nearest slots, so that a bin as long as an hour does not make a
	// staircase of a smooth cycle.
	g, perBin := m.gamma, 0.0
	if m.interval > 0 {
		perBin = float64(m.period) / float64(bins) / m.interval
	}
	j0, j1, w1 := b, b, 0.0
	if perBin > 1 {
		g /= perBin
		q := pos - 0.5
		fl := math.Floor(q)
		w1 = q - fl
		j0 = (int(fl) + bins) % bins
		j1 = (j0 + 1) % bins
	}
	sb := float64(m.prof[b])
	fresh := math.IsNaN(sb) || math.IsInf(sb, 0) // first visit, or a value beyond float32
	s := sb
	if !fresh && j0 != j1 {
		s0, s1 := float64(m.prof[j0]), float64(m.prof[j1])
		ok0 := !math.IsNaN(s0) && !math.IsInf(s0, 0)
		ok1 := !math.IsNaN(s1) && !math.IsInf(s1, 0)
		switch {
		case ok0 && ok1:
			s = (1-w1)*s0 + w1*s1
		case ok0:
			s = s0
		case ok1:
			s = s1
		}
	}
	var f Forecast
	switch {
	case !ready && fb.Scale > 0:
		f = Forecast{Expected: fb.Expected, Scale: m.err.scale(), Skill: m.err.skill}
		if f.Scale == 0 {
			f.Scale = fb.Scale
		}
		m.err.update(math.Abs(x - fb.Expected))
	case fresh:
		m.prof[b], m.cnt[b] = float32(x), 1
		return Forecast{Expected: x}
	default:
		f = Forecast{Expected: s, Scale: m.err.scale(), Skill: m.err.skill, Ready: ready}
		m.err.update(math.Abs(x - s))
	}
	if fresh {
		// Start the slot at the point, or, for a lone outlier, only as
		// far from the fallback forecast as clipLone lets it be: a spike
		// on the first day must not be expected at the same time the
		// next day.
		x = fb.Expected + clipLone(x-fb.Expected, f.Scale, &m.beyond)
		m.prof[b], m.cnt[b] = float32(x), 1
		return f
	}
	if m.cnt[b] < math.MaxUint8 {
		m.cnt[b]++
	}
	e := x - s
	if ready {
		e = clipLone(e, f.Scale, &m.beyond)
	}
	for k, j := range [2]int{j0, j1} {
		w := 1 - w1
		if k == 1 {
			if j1 == j0 {
				break
			}
			w = w1
		}
		sj := float64(m.prof[j])
		if math.IsNaN(sj) || math.IsInf(sj, 0) || w == 0 {
			continue
		}
		gj := g
		if c := m.cnt[j]; c > 0 && 1/float64(c) > gj {
			gj = 1 / float64(c)
		}
		if j0 == j1 {
			m.prof[j] = float32(sj + gj*e)
		} else {
			m.prof[j] = float32(sj + gj*w*(s+e-sj))
		}
	}
	return f
}
