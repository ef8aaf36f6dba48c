package detector

import (
	"math"
	"time"
)

// maxSeasonBins bounds the profile of a seasonal model: a day in 5-minute
// bins.
const maxSeasonBins = 288

// seasonalModel predicts a point from the same phase of past cycles: one
// slot per phase bin of the period (time of day for a daily cycle, hour of
// week for a weekly one), each an exponentially weighted average across
// cycles. Binning by timestamp rather than by point count keeps the state
// bounded whatever the sampling interval, and needs no period search:
// operational traffic follows the clock.
//
// A slot starts as the plain mean of its first points and turns into the
// weighted average once that weights old cycles less: otherwise its first
// point, weighted by nearly all the slot's rate spread over the many points
// a bin may hold in a cycle, would stand for the whole first cycle (one
// spike in the first week would be "expected" every week after).
type seasonalModel struct {
	period   int64   // seconds
	bins     int32   // used slots of prof
	gamma    float64 // profile learning rate, per cycle
	interval float64 // typical seconds between points (EWMA)
	start    int64   // unix seconds of the first point
	last     int64
	n        uint32
	err      errScale
	prof     [maxSeasonBins]float32 // NaN: bin not seen yet
	cnt      [maxSeasonBins]uint8   // points learnt by the slot, saturating
}

func newSeasonalModel(period time.Duration, bins int, gamma float64) seasonalModel {
	if bins > maxSeasonBins {
		bins = maxSeasonBins
	}
	m := seasonalModel{period: int64(period / time.Second), bins: int32(bins), gamma: gamma}
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
	return int(p * int64(m.bins) / m.period)
}

func (m *seasonalModel) Step(t time.Time, x float64) Forecast {
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
	b := m.bin(sec)
	s := float64(m.prof[b])
	if math.IsNaN(s) || math.IsInf(s, 0) {
		// First visit (or a value beyond float32): start the slot here.
		m.prof[b], m.cnt[b] = float32(x), 1
		return Forecast{Expected: x}
	}
	f := Forecast{
		Expected: s,
		Scale:    m.err.mae,
		Skill:    m.err.skill,
		Ready:    m.n > minModelPoints && sec-m.start >= m.period,
	}
	m.err.update(math.Abs(x - s))
	// Several points may fall in one bin per cycle: spread the per-cycle
	// rate over them.
	g := m.gamma
	if m.interval > 0 {
		if perBin := float64(m.period) / float64(m.bins) / m.interval; perBin > 1 {
			g /= perBin
		}
	}
	if m.cnt[b] < math.MaxUint8 {
		m.cnt[b]++
	}
	if mean := 1 / float64(m.cnt[b]); mean > g {
		g = mean
	}
	m.prof[b] = float32(s + g*(x-s))
	return f
}
