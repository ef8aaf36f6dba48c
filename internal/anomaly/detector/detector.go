// Package detector scores the points of one time series as they arrive: it
// learns what is normal for the series and says how surprising each new
// point is. It is pure Go with no collector dependency, keeps a few
// kilobytes of fixed-size state per series and does constant work per point.
//
// Design, in order of the data flow:
//
//  1. Four online models forecast the next point (model.go): a fast and a
//     slow exponentially weighted level (level.go), and time-of-day and
//     hour-of-week profiles (seasonal.go). Each tracks its typical error.
//     The profiles place points by their time, not by their count, and
//     read a coarse profile between slot centres. The slow level and the
//     profiles are robust: a lone outlier moves them only as far as a few
//     typical errors, so the ordinary spikes of a spiky series do not
//     leave a wake of "anomalies" behind them. Until a profile has seen a
//     cycle, it stands in with the model below it (the level for the day,
//     the day for the week) and learns its error scale from that.
//     The slow level's deviation is also read as a ratio (ratio.go): on
//     positive series that vary with their level, a fall to zero stands
//     out as a spike does.
//  2. Each model's deviation, in units of its typical error, is rated
//     against that model's own history of deviations (surprise.go), kept
//     from the model's first forecast on: a tail probability for the
//     point, for the average of the last few points and for a slow average
//     over some hours of points, as fits the model. For the model of the
//     last few points the average is judged both ways: a series that stops
//     moving where it always moves is as rare as one that jumps. Rarity is
//     judged per series, so scores are comparable across series with one
//     threshold.
//  3. The combiner (combiner.go) takes the most surprised model: a point is
//     as anomalous as the best-informed view finds it.
//  4. The detector (this file) turns that into a score in [0,1], fires when
//     the score crosses the threshold, and stays quiet until the series has
//     been calm for a while (one incident, one detection).
package detector

import (
	"fmt"
	"math"
	"time"
	"unsafe"
)

// Model rates. They are properties of the method, not per-deployment knobs.
const (
	minModelPoints = 16    // a model forecasts only after this many points
	scaleAlpha     = 0.005 // memory of a model's typical error: ~200 points
	sustainLen     = 8     // points averaged for the sustained-deviation view
	sustainCap     = 10.0  // one point adds at most this to the averages
	driftLen       = 64    // points behind the slow average of deviations
	intervalAlpha  = 0.05  // memory of the typical interval between points: ~20 points
)

// Names of the models, reported as Result.Basis.
var modelNames = [numModels]string{"recent", "level", "daily", "weekly"}

const numModels = 4

// Indices of the models: the recent one (whose expected value is the last
// point's, near enough), and the level, the baseline of the ratio view.
const (
	recentIdx = 0
	levelIdx  = 1
)

// Result is the verdict on one point.
type Result struct {
	// Score in [0,1]: how surprising the point is for this series. A score
	// s means the deviation had a probability of about 10^(-10*s), to a
	// tenth of a decade (scoreSteps). It is 0 while warming up and while an
	// incident is open.
	Score float64
	// Expected is the value the model behind Basis predicted.
	Expected float64
	// Deviation is |observed - expected| in units of that model's typical
	// error.
	Deviation float64
	// Basis names the model the point was judged against: "recent",
	// "level", "daily" or "weekly" (empty until a model is ready).
	Basis string
	// Anomalous is true on the point that opens an incident
	// (Score >= Config.Threshold).
	Anomalous bool
	// Resolved is true on the point that closes an incident: the series has
	// been calm for Config.ResolveAfter points.
	Resolved bool
	// Skipped is true when the value was NaN or infinite and was ignored.
	Skipped bool
}

// Stats counts what a detector has seen.
type Stats struct {
	Points    uint64 // finite points scored or learned
	Skipped   uint64 // NaN or infinite values ignored
	Anomalies uint64 // incidents opened
}

// Detector scores one series. It is not safe for concurrent use.
type Detector struct {
	cfg Config

	recent levelModel    // the last few points: steps and spikes
	level  levelModel    // a longer, robust baseline: noisy series
	daily  seasonalModel // time of day
	weekly seasonalModel // hour of week

	surprise [numModels]surprise // one per model
	ratio    ratioView           // the level model's deviations as ratios

	firing     bool    // an incident is open
	calm       int     // consecutive calm points while firing
	resolution float64 // absolute floor of the deviation unit (SetResolution)
	stats      Stats

	// Fixed-size storage the models and views point into.
	dailyProf  [dailyBins]float32
	weeklyProf [weeklyBins]float32
	dailyCnt   [dailyBins]uint8
	weeklyCnt  [weeklyBins]uint8
	hists      [numHists]tailHist
	repeats    repeatView
}

// The views of each model's deviations (surprise.go): the point, the
// sustained mean, the slow drift. The level models have no drift view:
// the recent model's deviations are point-to-point changes, whose slow
// average is the noise level the profiles' drift views watch, and the slow
// level follows an episode of hours too closely to see it. The slow level
// has no sustained view either: a shift from it is what the daily
// profile's sustained view sees, the profile standing in with the level
// until it has seen a day and holding the level where there is no cycle;
// a second histogram of the same means only adds a chance of a false alarm.
var views = [numModels]struct{ point, sustained, drift, twoSided bool }{
	{point: true, sustained: true, twoSided: true}, // recent
	{point: true}, // level
	{point: true, sustained: true, drift: true}, // daily
	{point: true, sustained: true, drift: true}, // weekly
}

// numHists is the number of views over all models.
const numHists = 9

// New returns a detector for one series. It panics on an invalid config:
// callers validate configuration at start-up.
func New(cfg Config) *Detector {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Errorf("%w: %w", errInvalidConfig, err))
	}
	d := &Detector{
		cfg:    cfg,
		recent: newLevelModel(0.5, false),
		level:  newLevelModel(0.05, true),
	}
	d.daily = newSeasonalModel(24*time.Hour, 0.3, d.dailyProf[:], d.dailyCnt[:])
	d.weekly = newSeasonalModel(7*24*time.Hour, 0.3, d.weeklyProf[:], d.weeklyCnt[:])
	d.repeats = repeatView{hist: newTailHist(cfg.Memory), warmup: cfg.Warmup}
	h := 0
	next := func(on bool) *tailHist {
		if !on {
			return nil
		}
		d.hists[h] = newTailHist(cfg.Memory)
		h++
		return &d.hists[h-1]
	}
	for i, v := range views {
		d.surprise[i] = surprise{
			point:     next(v.point),
			sustained: next(v.sustained),
			drift:     next(v.drift),
			twoSided:  v.twoSided,
			warmup:    int32(min(cfg.Warmup, math.MaxInt32)),
		}
	}
	return d
}

// Observe scores the point (t, v) against what the series has done so far,
// then learns it. Points should arrive in time order; NaN and infinite
// values are counted and skipped.
func (d *Detector) Observe(t time.Time, v float64) Result {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		d.stats.Skipped++
		return Result{Skipped: true}
	}
	d.stats.Points++

	var fs [numModels]Forecast
	fs[0] = d.recent.step(v)
	fs[1] = d.level.step(v)
	fs[2] = d.daily.step(t, v, fs[1])
	fs[3] = d.weekly.step(t, v, fs[2])
	d.ratio.learnMagnitude(v, d.cfg.Memory)
	var alt [numModels]float64
	if lf := fs[levelIdx]; lf.Ready || lf.Scale > 0 {
		alt[levelIdx] = d.ratio.deviation(v, lf.Expected, d.resolution, true)
	}
	c, ok := combine(fs[:], d.surprise[:], v, d.resolution, &alt)
	// A value repeated more often in a row than the series repeats
	// itself: the recent model's view (the value expected is the last one).
	if pr := d.repeats.observe(v); ok && pr < c.p {
		c.p, c.model, c.forecast, c.z = pr, recentIdx, fs[recentIdx], 0
		c.pShort = min(c.pShort, pr)
	}
	if !ok {
		return Result{Expected: v}
	}
	r := Result{Expected: c.forecast.Expected, Deviation: c.z, Basis: modelNames[c.model]}
	score := reported(decades(c.p))

	if d.stats.Points <= uint64(d.cfg.Warmup) {
		score = 0
	}
	// While an incident is open, further points are not reported. It
	// resolves once the points themselves have scored below half the
	// threshold for ResolveAfter points in a row: the slow drift view
	// lingers long after the series is back, so it does not hold an
	// incident open.
	if d.firing {
		if decades(c.pShort) < d.cfg.Threshold/2 {
			d.calm++
		} else {
			d.calm = 0
		}
		if d.calm >= d.cfg.ResolveAfter {
			d.firing = false
			r.Resolved = true
		}
		score = 0
	}
	r.Score = score
	if score >= d.cfg.Threshold {
		r.Anomalous = true
		d.firing, d.calm = true, 0
		d.stats.Anomalies++
	}
	return r
}

// scoreSteps sets the resolution of a reported score: a tenth of a decade of
// probability. The tail estimate behind it resolves no finer: its bins are
// a quarter octave of deviation wide, 0.15 decade of the reference tail,
// and it is read from a few thousand points' history. Finer digits only
// rank points by noise in the estimate, and a threshold chosen among them
// on some series (NAB's optimiser picks any value the scores take) fits
// that noise instead of transferring to other series.
const scoreSteps = 100 // per unit of score

// reported rounds a score down to its resolution. Dividing the whole
// number of steps makes 0.4 exactly the 0.4 a threshold is written as.
func reported(s float64) float64 {
	return math.Floor(s*scoreSteps+1e-9) / scoreSteps
}

// SetResolution sets the smallest change of the series that means
// anything, for the points that follow: deviations are measured in units of
// at least this much. For a series of counts it is one event (one timeout
// among the window's queries, one drop per window): on a series that has
// been flat at zero, the first event is then a deviation of one unit, not
// an infinite one, and only a rise of several events is rare. It may change
// from point to point (the volume behind a ratio does). The default, 0,
// leaves only the relative floor of 1% of the expected value.
func (d *Detector) SetResolution(r float64) {
	if r >= 0 && !math.IsInf(r, 0) {
		d.resolution = r
	}
}

// Dismiss closes the incident the last point opened, for a caller that
// decides not to report it (too little volume behind it, a change too small
// to matter, a fall where only rises count). Without it the detector would
// stay quiet until that unreported incident resolved, and miss a real one
// starting meanwhile. The point stays learned; the next anomalous point can
// open a new incident.
func (d *Detector) Dismiss() {
	if d.firing {
		d.firing, d.calm = false, 0
		d.stats.Anomalies--
	}
}

// Firing reports whether an incident is open for this series.
func (d *Detector) Firing() bool { return d.firing }

// Stats returns the counters of this detector.
func (d *Detector) Stats() Stats { return d.stats }

// StateBytes is the memory held by one detector. All state lives in
// fixed-size fields (the model interfaces point into the detector itself),
// so this is the same for every series.
func (d *Detector) StateBytes() int { return int(unsafe.Sizeof(*d)) }
