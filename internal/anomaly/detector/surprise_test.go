package detector

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A single point's deviation beyond everything in memory is rated by the
// spread of the series' own deviations (in units of the typical error, as
// the models measure them): after Gaussian errors, a deviation of 16
// typical errors is rarer than Chebyshev's 1/z² says; after the same
// errors with one point in twenty a spike of 4 to 12 typical errors, the
// same deviation, still twice the largest seen, is several times less rare.
func TestPointReferenceFollowsSpread(t *testing.T) {
	const memory, points, z = 2000, 4000, 16.0
	record := func(spikes float64) float64 {
		rng := rand.New(rand.NewPCG(5, 6))
		h, sp := newTailHist(memory), spread{}
		for range points {
			d := math.Abs(rng.NormFloat64()) / math.Sqrt(2/math.Pi) // mean 1
			if rng.Float64() < spikes {
				d = 4 + 8*rng.Float64()
			}
			sp.observe(&h, d)
		}
		return sp.observe(&h, z)
	}
	gauss, spiky := record(0), record(0.05)
	mass := float64(memory) * (1 - math.Pow(1-1.0/memory, points)) // the history's decayed mass
	chebyshev := 1 / (z * z) / (mass + 1)
	t.Logf("p(%v) after Gaussian errors %.3g, with spikes %.3g, Chebyshev %.3g", z, gauss, spiky, chebyshev)
	assert.Less(t, gauss, chebyshev, "Gaussian errors: a record of 16 typical errors is rarer than 1/z²")
	assert.Greater(t, spiky, 3*gauss, "spiky errors: the same record is far less rare")
}

// Scores come in steps of a tenth of a decade, and a threshold written on
// that grid fires exactly where the unrounded score reaches it.
func TestReportedScoreResolution(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{0, 0}, {0.4, 0.4}, {0.40449, 0.4}, {0.3999999, 0.39}, {0.41, 0.41}, {1, 1},
	} {
		assert.Equal(t, c.want, reported(c.in), "reported(%v)", c.in)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	d := New(DefaultConfig())
	for i := range 5000 {
		v := 100 + gauss(rng, 5)
		if i == 3000 {
			v += 200
		}
		r := d.Observe(t0.Add(time.Duration(i)*step), v)
		steps := r.Score * scoreSteps
		require.InDelta(t, math.Round(steps), steps, 1e-6, "score %v at point %d", r.Score, i)
		if i == 3000 {
			assert.True(t, r.Anomalous, "the spike scores %v", r.Score)
		}
	}
}
