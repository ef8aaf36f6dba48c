package detector

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Properties that must hold for any series, checked on synthetic ones:
// scale, level shifts, step-like and integer values, long flat stretches
// and gaps in the timestamps.

// run feeds values at 5-minute steps (times[i] when times is given) and
// returns the indices of the alerts after learnFor, and all scores.
func run(t *testing.T, cfg Config, vals []float64, times []time.Time) (alerts []int, scores []float64) {
	t.Helper()
	d := New(cfg)
	for i, v := range vals {
		ts := t0.Add(time.Duration(i) * step)
		if times != nil {
			ts = times[i]
		}
		r := d.Observe(ts, v)
		require.False(t, math.IsNaN(r.Score))
		scores = append(scores, r.Score)
		if r.Anomalous && i >= learnFor {
			alerts = append(alerts, i)
		}
	}
	return alerts, scores
}

// serverLike is a noisy, spiky, heavy-tailed series with a daily cycle, as
// per-host metrics are, with a burst at incidentT.
func serverLike(rng *rand.Rand) []float64 {
	v := make([]float64, n)
	for i := range v {
		level := 100 * (1 + 0.5*math.Cos(2*math.Pi*float64(i)/float64(perDay)))
		v[i] = level * math.Exp(0.3*rng.NormFloat64())
		if rng.Float64() < 0.02 {
			v[i] += level * math.Pow(1-rng.Float64(), -1/1.5)
		}
		if i >= incidentT && i < incidentT+6 {
			v[i] = 20 * level
		}
	}
	return v
}

// The detector measures deviations relative to the series: the same series
// in other units (10^-3 to 10^9) gets the same alerts and the same scores.
func TestScaleInvariance(t *testing.T) {
	base := serverLike(rand.New(rand.NewPCG(5, 6)))
	want, wantScores := run(t, DefaultConfig(), base, nil)
	require.NotEmpty(t, want)
	assert.True(t, hitWithin(want, incidentT, 6), "the burst is detected: %v", want)
	for _, k := range []float64{1e-3, 1e3, 1e9} {
		scaled := make([]float64, len(base))
		for i, v := range base {
			scaled[i] = v * k
		}
		got, scores := run(t, DefaultConfig(), scaled, nil)
		assert.Equal(t, want, got, "scale %g", k)
		for i := range scores {
			if math.Abs(scores[i]-wantScores[i]) > 1e-6 {
				t.Fatalf("scale %g: point %d scored %v, %v at scale 1", k, i, scores[i], wantScores[i])
			}
		}
	}
}

// A lasting level shift is one incident: alerted at once, then learned; it
// does not alert again day after day at the time of day it happened.
func TestLevelShiftOneAlert(t *testing.T) {
	for name, up := range map[string]float64{"up": 3, "down": 1.0 / 3} {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			vals := make([]float64, n)
			for i := range vals {
				level := 100 * (1 + 0.3*math.Cos(2*math.Pi*float64(i)/float64(perDay)))
				if i >= incidentT {
					level *= up
				}
				vals[i] = level * (1 + 0.05*rng.NormFloat64())
			}
			alerts, _ := run(t, DefaultConfig(), vals, nil)
			t.Logf("alerts %v", alerts)
			require.NotEmpty(t, alerts)
			assert.Contains(t, []int{incidentT, incidentT + 1}, alerts[0], "alerted at the step")
			for _, a := range alerts {
				assert.Less(t, a, incidentT+perDay/4, "no alert once the new level has been seen for hours")
			}
		})
	}
}

// Step-like and integer series: low counts (mostly 0, 1, 2), and a metric
// that switches between two levels at random, are their normal selves, not
// a stream of anomalies; a real change in them is detected.
func TestStepLikeAndIntegerSeries(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	counts := make([]float64, n)
	for i := range counts {
		lambda := 0.7
		if i >= incidentT && i < incidentT+12 {
			lambda = 15
		}
		counts[i] = poissonDraw(rng, lambda)
	}
	alerts, _ := run(t, DefaultConfig(), counts, nil)
	t.Logf("counts: alerts %v", alerts)
	assert.True(t, hitWithin(alerts, incidentT, 2), "a rise from under one to fifteen a point is detected at once")
	assert.LessOrEqual(t, len(alerts), 3, "low counts are not anomalies")

	twoLevel := make([]float64, n)
	high := false
	for i := range twoLevel {
		if rng.Float64() < 0.05 {
			high = !high
		}
		twoLevel[i] = 10
		if high {
			twoLevel[i] = 30
		}
		if i >= incidentT && i < incidentT+12 {
			twoLevel[i] = 90
		}
	}
	alerts, _ = run(t, DefaultConfig(), twoLevel, nil)
	t.Logf("two levels: alerts %v", alerts)
	assert.True(t, hitWithin(alerts, incidentT, 3), "a third level is detected")
	assert.LessOrEqual(t, len(alerts), 3, "switching between its two levels is normal")
}

func poissonDraw(rng *rand.Rand, lambda float64) float64 {
	l, k, p := math.Exp(-lambda), 0.0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// A long flat stretch (an idle or stalled source) does not leave the
// detector hypersensitive: when the usual noise resumes, that is at most
// one alert, and the flat stretch itself alerts at most once.
func TestLongFlatStretch(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	vals := make([]float64, n)
	flatFrom, flatTo := 5*perDay, 8*perDay
	for i := range vals {
		vals[i] = 50 + 5*rng.NormFloat64()
		if i >= flatFrom && i < flatTo {
			vals[i] = 50
		}
	}
	alerts, _ := run(t, DefaultConfig(), vals, nil)
	t.Logf("alerts %v", alerts)
	var during, after int
	for _, a := range alerts {
		switch {
		case a >= flatFrom && a < flatTo:
			during++
		case a >= flatTo:
			after++
		}
	}
	assert.LessOrEqual(t, during, 1, "flat stretch")
	assert.LessOrEqual(t, after, 1, "noise resuming")
}

// Gaps in the timestamps: scattered missing points are not anomalies, the
// seasonal models placing points by their time, not by their count. After
// a gap of hours in a cyclic series the level models compare the first
// point with the level before the gap: at most one alert per gap, and the
// series is judged as before afterwards.
func TestTimestampGaps(t *testing.T) {
	for name, long := range map[string]bool{"scattered": false, "hours and days": true} {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(13, 14))
			var vals []float64
			var times []time.Time
			for i := 0; i < n; i++ {
				if rng.Float64() < 0.01 {
					continue
				}
				if long && ((i >= 6*perDay && i < 6*perDay+perDay/4) || (i >= 9*perDay && i < 11*perDay)) {
					continue // six hours, then two days, missing
				}
				times = append(times, t0.Add(time.Duration(i)*step))
				vals = append(vals, diurnal(i)+gauss(rng, 1))
			}
			alerts, _ := run(t, DefaultConfig(), vals, times)
			t.Logf("alerts %v", alerts)
			if !long {
				assert.Empty(t, alerts)
				return
			}
			assert.LessOrEqual(t, len(alerts), 2, "one per gap at most")
		})
	}
}

// hitWithin says whether an alert falls in [at, at+k).
func hitWithin(alerts []int, at, k int) bool {
	for _, a := range alerts {
		if a >= at && a < at+k {
			return true
		}
	}
	return false
}

// A sparse count (mostly zero, runs of zeros of a few dozen points at
// most) that freezes at zero for a day is a source that stopped reporting:
// alerted once its run is far longer than any it has had. The same count
// at zero from the start, as an error ratio of a healthy edge is, is never
// alerted.
func TestFrozenSparseCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = poissonDraw(rng, 0.3)
		if i >= incidentT && i < incidentT+perDay {
			vals[i] = 0
		}
	}
	alerts, _ := run(t, DefaultConfig(), vals, nil)
	t.Logf("alerts %v", alerts)
	frozen := 0
	for _, a := range alerts {
		if a >= incidentT && a < incidentT+perDay {
			frozen++
		}
	}
	assert.Equal(t, 1, frozen, "frozen count alerted once")

	alerts, _ = run(t, DefaultConfig(), make([]float64, n), nil)
	assert.Empty(t, alerts, "a count that has always been zero")
}
