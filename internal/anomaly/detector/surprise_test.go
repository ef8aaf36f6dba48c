package detector

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
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
