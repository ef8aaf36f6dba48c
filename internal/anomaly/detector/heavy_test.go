package detector

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Calibration across series: one threshold must mean the same rarity on a
// quiet series and on a heavy-tailed one that spikes every day. On series
// of ordinary Pareto spikes (tail index 1.2 to 2, 0.5 % to 5 % of the
// points) the false alarms at the default threshold are about as rare as
// on the same series without spikes (at most twice as many, where the
// detector before this check had three times as many and missed half the
// outages), and an outage is still detected at once; on a quiet series, the first spike as large as a common one of the
// spiky series is an anomaly.
func TestHeavyTailedSpikesAreOrdinary(t *testing.T) {
	series := func(seed uint64, spiky bool) []float64 {
		rng := rand.New(rand.NewPCG(seed, 99))
		alpha := 1.2 + 0.8*rng.Float64()
		rate := 0.005 + 0.045*rng.Float64()
		vals := make([]float64, n)
		for i := range vals {
			level := 1000 * (1 + 0.4*math.Cos(2*math.Pi*float64(i)/float64(perDay)))
			vals[i] = level * math.Exp(0.2*rng.NormFloat64())
			if spiky && rng.Float64() < rate {
				vals[i] += level * math.Pow(1-rng.Float64(), -1/alpha)
			}
			if i >= incidentT && i < incidentT+24 {
				vals[i] = 0 // an outage of two hours
			}
		}
		return vals
	}
	var falseAlerts [2]int
	detected := 0
	const seeds = 8
	for seed := uint64(1); seed <= seeds; seed++ {
		for k, spiky := range []bool{false, true} {
			alerts, _ := run(t, DefaultConfig(), series(seed, spiky), nil)
			for _, a := range alerts {
				if a < incidentT {
					falseAlerts[k]++
				}
			}
			if spiky && hitWithin(alerts, incidentT, 6) {
				detected++
			}
			t.Logf("seed %d spiky %v: alerts %v", seed, spiky, alerts)
		}
	}
	t.Logf("false alerts in %d points: %d without spikes, %d with", seeds*(incidentT-learnFor), falseAlerts[0], falseAlerts[1])
	assert.LessOrEqual(t, falseAlerts[1], 2*falseAlerts[0]+seeds/2, "ordinary spikes are about as rare as noise")
	assert.GreaterOrEqual(t, detected, seeds-1, "outages of the spiky series are detected")

	quiet := make([]float64, n)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range quiet {
		quiet[i] = 1000 * math.Exp(0.2*rng.NormFloat64())
		if i == incidentT {
			quiet[i] += 1000 * 10 // as large as a common spike above
		}
	}
	alerts, _ := run(t, DefaultConfig(), quiet, nil)
	assert.True(t, hitWithin(alerts, incidentT, 1), "the first spike of a quiet series: %v", alerts)
}
