package detector

import "math"

// verdict is the combiner's reading of one point.
type verdict struct {
	forecast Forecast
	model    int     // index of the model behind forecast
	z        float64 // deviation from forecast in its typical errors
	p        float64 // tail probability of the rarest view
	pShort   float64 // that of the rarest point or sustained view
}

// promoteP: above this tail probability (a score of 0.2), nothing is
// surprising and the verdict reports the most skilled model's forecast as
// the expected value; below it, the forecast of the model that is
// surprised.
const promoteP = 1e-2

// combine rates x against every model that is ready, each by its own
// history of deviations, and keeps the highest score. A point is as
// anomalous as the most surprised competent view finds it: the daily profile
// flags a missing daily peak that the level models shrug off, the level
// models flag a step the profiles have not learned, and each model's own
// history discounts the errors it always makes (a level model on a cyclic
// series, a profile on a noisy one).
//
// alt[i], when larger, replaces model i's deviation: the level model's
// deviation on the ratio scale (ratio.go). Either way is one deviation, so
// the view adds no chance of a false alarm where the two agree.
func combine(fs []Forecast, ss []surprise, x, resolution float64, alt *[numModels]float64) (verdict, bool) {
	top, best := -1, -1
	v := verdict{p: 1, pShort: 1}
	for i := range fs {
		if !fs[i].Ready {
			// A model still learning has a history of deviations to
			// build all the same, so that it is not judged against a
			// near-empty one when it becomes ready.
			if fs[i].Scale > 0 {
				ss[i].observe(max(deviation(x, fs[i], resolution), alt[i]))
			}
			continue
		}
		z := deviation(x, fs[i], resolution)
		short, drift := ss[i].observe(max(z, alt[i]))
		p := min(short, drift)
		if top < 0 || p < v.p {
			top = i
			v = verdict{forecast: fs[i], model: i, z: z, p: p, pShort: v.pShort}
		}
		v.pShort = min(v.pShort, short)
		if best < 0 || fs[i].Skill < fs[best].Skill {
			best = i
		}
	}
	if top < 0 {
		return verdict{}, false
	}
	if v.p > promoteP && best != top {
		v.forecast, v.model, v.z = fs[best], best, deviation(x, fs[best], resolution)
	}
	return v, true
}

// relScaleFloor: a deviation is measured in units of at least 1% of the
// expected value, so a flat or nearly flat series does not alert on changes
// no operator would care about, and never divides by zero. The caller's
// resolution (Detector.SetResolution) is a second, absolute floor.
const relScaleFloor = 0.01

func deviation(x float64, f Forecast, resolution float64) float64 {
	s := f.Scale
	if floor := relScaleFloor*math.Abs(f.Expected) + 1e-12; s < floor {
		s = floor
	}
	if s < resolution {
		s = resolution
	}
	return math.Abs(x-f.Expected) / s
}
