package main

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The corpus in testdata/scoring has the awkward cases of NAB's scoring: a
// window inside the probation period, a one-row window, two adjacent
// windows, a file without windows, NaN scores and many tied scores. The
// expected figures are those of an independent implementation of NAB's
// scorer (a Python re-implementation that reproduces NAB's published
// scores) run on the same files:
//
//	nab_score.py testdata/scoring/results --windows testdata/scoring/labels/combined_windows.json \
//	    --data-dir testdata/scoring/data --profile all [--threshold 0.5] --json out.json
func TestScoreMatchesReference(t *testing.T) {
	corpus, err := loadCorpus("testdata/scoring/data", "testdata/scoring/labels/combined_windows.json")
	require.NoError(t, err)
	c, err := readCandidate("testdata/scoring/results", 0.5, corpus)
	require.NoError(t, err)
	want := map[string]struct{ thr, raw, score, rawAt, scoreAt float64 }{
		"standard":           {1.0, -2.2600222881302656, 24.908888289724857, -13.100146003918933, -73.63769094471758},
		"reward_low_FP_rate": {1.0, -2.9200222881302658, 18.908888289724857, -29.134588934441197, -219.40535394946545},
		"reward_low_FN_rate": {0.774485, -4.873701211564499, 32.039367427721885, -14.100146003918933, -25.625912524493334},
	}
	for _, p := range profiles {
		w := want[p.name]
		r := scoreCorpus(c.sweeps, p)
		assert.Equal(t, w.thr, r.threshold, p.name)
		assert.InDelta(t, w.raw, r.raw, 1e-9, p.name)
		assert.InDelta(t, w.score, r.score, 1e-9, p.name)
		r = scoreAt(c.sweeps, p, 0.5)
		assert.InDelta(t, w.rawAt, r.raw, 1e-9, p.name)
		assert.InDelta(t, w.scoreAt, r.score, 1e-9, p.name)
	}
}

// One file of 100 rows with a window over rows 40..49: each case checks a
// term of NAB's cost function computed by hand.
func TestSweepByHand(t *testing.T) {
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	times := make([]time.Time, 100)
	for i := range times {
		times[i] = t0.Add(time.Duration(i) * 5 * time.Minute)
	}
	windows := [][2]time.Time{{times[40], times[49]}}
	std := profiles[0]
	sigma := func(x float64) float64 { return 2/(1+math.Exp(5*x)) - 1 }
	for _, tc := range []struct {
		name   string
		detect []int
		raw    float64
	}{
		{"nothing: the window is missed", nil, -1},
		{"first row of the window earns all", []int{40}, 1},
		{"extra detections in a window are free", []int{40, 41, 45}, 1},
		{"last row of the window", []int{49}, sigma(-0.1) / sigma(-1)},
		{"a false positive before the first window", []int{20, 40}, 1 - 0.11},
		{"detections in probation are not scored", []int{3, 40}, 1},
		{"just after a window costs little", []int{40, 50}, 1 + 0.11*sigma(1.0/9)},
		{"far after a window costs a little less", []int{40, 70}, 1 + 0.11*sigma(21.0/9)},
		{"beyond three window widths the full weight", []int{40, 90}, 1 - 0.11},
	} {
		scores := make([]float64, 100)
		for _, i := range tc.detect {
			scores[i] = 1
		}
		s, err := newSweep("f.csv", times, windows, scores)
		require.NoError(t, err)
		r := scoreAt([]*sweep{s}, std, 0.5)
		assert.InDelta(t, tc.raw, r.raw, 1e-12, tc.name)
		assert.InDelta(t, 100*(tc.raw+1)/2, r.score, 1e-9, tc.name, "normalised between null (-1) and perfect (1)")
		thr, best := newPool([]*sweep{s}).optimise(std, nil)
		if tc.raw > -1 {
			assert.Equal(t, 1.0, thr, tc.name)
			assert.InDelta(t, tc.raw, best, 1e-12, tc.name)
		} else {
			assert.Equal(t, noDetection, thr, "nothing to gain: no detection")
		}
	}
	_, err := newSweep("f.csv", times, [][2]time.Time{{times[40], t0.Add(time.Second)}}, make([]float64, 100))
	assert.ErrorContains(t, err, "window limit")
}

// The optimiser picks the threshold NAB would: the best total, the highest
// threshold on a tie, and the optimum of a subset of the files when asked.
func TestOptimise(t *testing.T) {
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	times := make([]time.Time, 100)
	for i := range times {
		times[i] = t0.Add(time.Duration(i) * time.Minute)
	}
	windows := [][2]time.Time{{times[40], times[49]}}
	a := make([]float64, 100)
	a[40], a[60], a[70] = 0.8, 0.9, 0.3 // a costly false positive above the true one
	b := make([]float64, 100)
	b[45], b[20] = 0.7, 0.6
	b[46] = 0.65 // changes nothing: a tie with 0.7, which wins as the higher
	sa, err := newSweep("a.csv", times, windows, a)
	require.NoError(t, err)
	sb, err := newSweep("b.csv", times, windows, b)
	require.NoError(t, err)
	p := newPool([]*sweep{sa, sb})
	std := profiles[0]

	thr, best := p.optimise(std, nil)
	assert.Equal(t, 0.7, thr, "both windows, one false positive after a window and none before")
	assert.InDelta(t, rawScore([]*sweep{sa, sb}, std, 0.7), best, 1e-12)

	thr, _ = p.optimise(std, func(f int) bool { return f == 1 })
	assert.Equal(t, 0.7, thr, "b alone: its window, not the false positive at 0.6")
	thr, _ = p.optimise(std, func(f int) bool { return f == 0 })
	assert.Equal(t, 0.8, thr, "a alone")
}

// What counts reports as lost adds up, with the raw score, to a perfect
// score (every scorable window detected on its first row, nothing else)
// on every file of the reference corpus, at every profile and at a
// threshold where each kind of loss occurs.
func TestCountsLossesAddUp(t *testing.T) {
	corpus, err := loadCorpus("testdata/scoring/data", "testdata/scoring/labels/combined_windows.json")
	require.NoError(t, err)
	c, err := readCandidate("testdata/scoring/results", 0.5, corpus)
	require.NoError(t, err)
	var lost [3]float64
	for _, p := range profiles {
		for _, s := range c.sweeps {
			k := s.counts(p, 0.5)
			assert.InDelta(t, p.tp*float64(s.nScWin), k.raw+k.lostMissed+k.lostFP+k.lostLate, 1e-9, "%s %s", p.name, s.key)
			assert.Equal(t, float64(k.missed)*(p.tp+p.fn), k.lostMissed)
			lost[0] += k.lostMissed
			lost[1] += k.lostFP
			lost[2] += k.lostLate
		}
	}
	for i, l := range lost {
		assert.Positive(t, l, "loss %d never occurs on the reference corpus", i)
	}
}
