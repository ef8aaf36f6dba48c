package main

// A synthetic corpus of per-host server metrics with labelled anomalies: a
// held-out check for the class of series the detector meets in production,
// which NAB's categories barely cover. It is generated from a fixed seed,
// written before the detector was changed against it and not tuned on.
//
// Four categories, one per kind of metric, at 5-minute points over 14 days:
//
//   - cpu: utilisation in percent, clipped to [0,100], two decimals;
//     multiplicative noise, heavy-tailed spikes (GC, cron), often a daily
//     cycle, sometimes an hourly or daily job;
//   - network: bytes received per interval, 10^4..10^9, log-normal noise,
//     bursts with a Pareto tail, daily cycle;
//   - disk: bytes written per interval, many idle (zero) intervals for some
//     disks, periodic flushes, very heavy-tailed bursts;
//   - requests: request counts, Poisson with gamma over-dispersion around a
//     daily and weekly cycle, from under one to thousands per interval (low
//     counts are step-like, with many zeros).
//
// Every series wanders slowly (a mean-reverting walk of its log level) and
// may have unlabelled nuisances an operator would not page on: a deploy
// that moves the level by a few tens of percent, a periodic job, missing
// points and gaps of hours in the timestamps.
//
// Anomalies (zero to three per series, after the first 20 % of it) are the
// incidents of such metrics: a spike above the series' largest ordinary
// peak so far; a burst of several intervals; a level shift up or down that
// lasts; an outage (the value falls to zero or idle); a runaway (CPU pinned
// near 100 %); a ramp (a leak, until the process restarts); a noise
// regime change; a stuck value (a frozen exporter); a missing daily cycle.
// Their sizes are drawn so that some are subtle. Each is labelled as NAB
// labels: a window centred on its start, 10 % of the file divided by the
// number of anomalies wide.

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

const (
	synthStep   = 5 * time.Minute
	synthPoints = 14 * 288
	synthPerDay = 288
)

var synthKinds = []string{"cpu", "network", "disk", "requests"}

// synthCorpus generates perKind series of every kind. Each seed is
// another corpus of the same kinds.
func synthCorpus(perKind int, seed uint64) []*series {
	return corpusOf(synthKinds, perKind, seed, synthSeries)
}

// corpusOf generates perKind series of every kind with gen.
func corpusOf(kinds []string, perKind int, seed uint64, gen func(kind string, idx int, seed uint64) *series) []*series {
	var out []*series
	for _, kind := range kinds {
		for i := 0; i < perKind; i++ {
			out = append(out, gen(kind, i, seed))
		}
	}
	return out
}

// gen is the state of one series being generated.
type gen struct {
	rng  *rand.Rand
	kind string
	n    int

	base       float64 // typical level
	amp        float64 // daily cycle amplitude, relative
	peak       float64 // hour of the daily peak
	weekend    float64 // level factor on Saturdays and Sundays
	sigma      float64 // noise, relative (log scale)
	walk       float64 // step of the log-level walk
	spikeRate  float64 // ordinary spikes per point
	spikeAlpha float64 // their Pareto tail index
	spikeSize  float64 // their scale, relative to the level
	zeroProb   float64 // disk: idle intervals
	jobEvery   int     // periodic job period in points (0: none)
	jobLen     int
	jobSize    float64
	dispersion float64 // requests: gamma shape of the rate noise
}

func logUniform(r *rand.Rand, lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo)))
}

func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + r.Float64()*(hi-lo) }

// pareto draws from a Pareto distribution with minimum 1 and tail index a.
func pareto(r *rand.Rand, a float64) float64 { return math.Pow(1-r.Float64(), -1/a) }

func newGen(kind string, idx int, seed uint64) *gen {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", kind, idx)
	g := &gen{rng: rand.New(rand.NewPCG(h.Sum64(), 2023+seed)), kind: kind, n: synthPoints}
	r := g.rng
	g.peak = uniform(r, 9, 17)
	g.weekend = 1
	if r.Float64() < 0.5 {
		g.weekend = uniform(r, 0.5, 0.9)
	}
	g.walk = uniform(r, 0, 0.01)
	switch kind {
	case "cpu":
		g.base = logUniform(r, 0.3, 50)
		g.amp = uniform(r, 0, 0.7) * float64(r.IntN(2))
		g.sigma = uniform(r, 0.03, 0.4)
		g.spikeRate = logUniform(r, 0.001, 0.05)
		g.spikeAlpha = uniform(r, 1.5, 3)
		g.spikeSize = uniform(r, 0.3, 2)
	case "network":
		g.base = logUniform(r, 1e4, 1e8)
		g.amp = uniform(r, 0, 0.8)
		g.sigma = uniform(r, 0.1, 0.6)
		g.spikeRate = logUniform(r, 0.002, 0.05)
		g.spikeAlpha = uniform(r, 1.2, 2)
		g.spikeSize = uniform(r, 0.5, 3)
	case "disk":
		g.base = logUniform(r, 1e3, 1e7)
		g.amp = uniform(r, 0, 0.5) * float64(r.IntN(2))
		g.sigma = uniform(r, 0.3, 1)
		g.spikeRate = logUniform(r, 0.005, 0.1)
		g.spikeAlpha = uniform(r, 1.1, 1.6)
		g.spikeSize = uniform(r, 1, 10)
		if r.Float64() < 0.4 {
			g.zeroProb = uniform(r, 0.05, 0.6)
		}
	case "requests":
		g.base = logUniform(r, 0.5, 5000)
		g.amp = uniform(r, 0.2, 0.9)
		g.sigma = 0
		g.dispersion = uniform(r, 3, 50)
		g.spikeRate = logUniform(r, 0.001, 0.01)
		g.spikeAlpha = uniform(r, 1.5, 3)
		g.spikeSize = uniform(r, 0.3, 1.5)
	}
	if kind != "requests" && r.Float64() < 0.4 {
		g.jobEvery = []int{12, 72, 288}[r.IntN(3)]
		g.jobLen = 1 + r.IntN(4)
		g.jobSize = uniform(r, 0.5, 3)
	}
	return g
}

// anomaly is one injected incident: from point start for length points.
type anomaly struct {
	kind          string
	start, length int
	factor        float64
}

func (a anomaly) active(i int) bool { return i >= a.start && i < a.start+a.length }

func synthSeries(kind string, idx int, seed uint64) *series {
	g := newGen(kind, idx, seed)
	r := g.rng
	t0 := time.Date(2024, time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)

	// Anomalies: how many, where, what.
	k := []int{0, 1, 1, 1, 2, 2, 2, 3}[r.IntN(8)]
	width := g.n / 10
	if k > 0 {
		width /= k
	}
	var anoms []anomaly
	for len(anoms) < k {
		s := int(0.2*float64(g.n)) + r.IntN(int(0.75*float64(g.n)))
		ok := true
		for _, a := range anoms {
			if abs(a.start-s) < width+width/2 {
				ok = false
			}
		}
		if ok {
			anoms = append(anoms, g.anomalyAt(s))
		}
	}
	// A nuisance deploy: an unlabelled level change of a few tens of
	// percent, away from the anomalies.
	deployAt, deploy := -1, 1.0
	if r.Float64() < 0.5 {
		deployAt = r.IntN(g.n)
		deploy = math.Exp(r.NormFloat64() * 0.15)
	}

	s := &series{key: kind + "/" + kind + "_" + strconv.Itoa(idx) + ".csv"}
	logLevel := 0.0
	maxSoFar := 0.0
	var last float64
	for i := 0; i < g.n; i++ {
		t := t0.Add(time.Duration(i) * synthStep)
		logLevel += -0.01*logLevel + g.walk*r.NormFloat64()
		level := g.base * math.Exp(logLevel) * g.cycle(t, 1)
		if deployAt >= 0 && i >= deployAt {
			level *= deploy
		}
		sigma := g.sigma
		cycle := 1.0
		var replace *float64
		for _, a := range anoms {
			if !a.active(i) {
				continue
			}
			switch a.kind {
			case "shift", "burst":
				level *= a.factor
			case "ramp":
				level *= 1 + (a.factor-1)*float64(i-a.start+1)/float64(a.length)
			case "noise":
				sigma = math.Max(sigma, 0.1) * a.factor
			case "nocycle":
				cycle = 0
			case "spike":
				v := math.Max(maxSoFar, level) * a.factor
				replace = &v
			case "outage":
				v := 0.0
				if g.kind == "cpu" {
					v = math.Min(level, 0.5) * 0.2
				}
				replace = &v
			case "runaway":
				v := 100 - math.Abs(r.NormFloat64())*a.factor
				replace = &v
			case "stuck":
				v := last
				replace = &v
			}
		}
		if cycle == 0 {
			level /= g.cycle(t, 1) / g.cycle(t, 0)
		}
		v := g.value(i, level, sigma)
		if replace != nil {
			v = *replace
		}
		v = g.format(v)
		if i < g.n/5 || replace == nil {
			maxSoFar = math.Max(maxSoFar, v)
		}
		last = v
		s.times = append(s.times, t)
		s.values = append(s.values, v)
	}
	sort.Slice(anoms, func(i, j int) bool { return anoms[i].start < anoms[j].start })
	for _, a := range anoms {
		s.windows = append(s.windows, [2]time.Time{
			s.times[max(0, a.start-width/2)], s.times[min(g.n-1, a.start+width/2)],
		})
		s.kinds = append(s.kinds, a.kind)
	}
	dropPoints(g.rng, s, 0.3, 0.005, 0.3) // scattered missing points, a gap of hours
	for i := range s.times {
		s.raw = append(s.raw, s.times[i].Format("2006-01-02 15:04:05"))
		s.rawVals = append(s.rawVals, strconv.FormatFloat(s.values[i], 'f', -1, 64))
	}
	return s
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// cycle is the daily and weekly factor of the level at t; amp scales the
// daily amplitude.
func (g *gen) cycle(t time.Time, amp float64) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	c := 1 + amp*g.amp*math.Cos(2*math.Pi*(h-g.peak)/24)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		c *= g.weekend
	}
	return c
}

// value draws the ordinary value of point i around level.
func (g *gen) value(i int, level, sigma float64) float64 {
	r := g.rng
	var v float64
	switch g.kind {
	case "requests":
		lambda := level * gammaUnit(r, g.dispersion)
		v = poisson(r, lambda)
	case "disk":
		if r.Float64() < g.zeroProb {
			return 0
		}
		v = level * math.Exp(sigma*r.NormFloat64())
	default:
		v = level * math.Exp(sigma*r.NormFloat64())
	}
	if r.Float64() < g.spikeRate {
		v += level * g.spikeSize * pareto(r, g.spikeAlpha)
	}
	if g.jobEvery > 0 && i%g.jobEvery < g.jobLen {
		v += level * g.jobSize
	}
	return v
}

// format applies the metric's range and resolution.
func (g *gen) format(v float64) float64 {
	switch g.kind {
	case "cpu":
		return math.Round(math.Min(math.Max(v, 0), 100)*100) / 100
	default:
		return math.Round(math.Max(v, 0))
	}
}

// anomalyAt draws an incident starting at point s, of a kind the metric
// has.
func (g *gen) anomalyAt(s int) anomaly {
	r := g.rng
	kinds := map[string][]string{
		"cpu":      {"spike", "burst", "shift", "outage", "runaway", "ramp", "noise"},
		"network":  {"spike", "burst", "shift", "outage", "noise", "stuck"},
		"disk":     {"spike", "burst", "shift", "outage", "noise", "ramp"},
		"requests": {"spike", "burst", "shift", "outage", "stuck", "nocycle"},
	}[g.kind]
	a := anomaly{kind: kinds[r.IntN(len(kinds))], start: s}
	rest := g.n - s
	switch a.kind {
	case "spike":
		a.length, a.factor = 1+r.IntN(3), uniform(r, 1.1, 3)
	case "burst":
		a.length, a.factor = 3+r.IntN(22), uniform(r, 1.5, 5)
	case "shift":
		a.length = rest
		if r.Float64() < 0.5 {
			a.length = min(rest, synthPerDay+r.IntN(3*synthPerDay))
		}
		a.factor = uniform(r, 1.5, 4)
		if r.Float64() < 0.5 {
			a.factor = 1 / a.factor
		}
	case "outage":
		a.length = 3 + r.IntN(60)
	case "runaway":
		a.length, a.factor = 12+r.IntN(200), uniform(r, 0.2, 3)
	case "ramp":
		a.length, a.factor = 36+r.IntN(200), uniform(r, 1.5, 4)
	case "noise":
		a.length, a.factor = 36+r.IntN(250), uniform(r, 2, 5)
	case "stuck":
		a.length = 36 + r.IntN(250)
	case "nocycle":
		a.length = synthPerDay
	}
	a.length = min(a.length, rest)
	return a
}

// dropPoints removes points of s: with probability pScattered each point
// with probability rate, with probability pGap one gap of one to twelve
// hours; never a window's limits.
func dropPoints(r *rand.Rand, s *series, pScattered, rate, pGap float64) {
	keep := make([]bool, len(s.times))
	for i := range keep {
		keep[i] = true
	}
	if r.Float64() < pScattered {
		for i := range keep {
			if r.Float64() < rate {
				keep[i] = false
			}
		}
	}
	if r.Float64() < pGap {
		at, l := r.IntN(len(keep)), 12+r.IntN(132)
		for i := at; i < min(len(keep), at+l); i++ {
			keep[i] = false
		}
	}
	for _, w := range s.windows {
		for i, t := range s.times {
			if t.Equal(w[0]) || t.Equal(w[1]) {
				keep[i] = true
			}
		}
	}
	j := 0
	for i := range s.times {
		if keep[i] {
			s.times[j], s.values[j] = s.times[i], s.values[i]
			j++
		}
	}
	s.times, s.values = s.times[:j], s.values[:j]
}

// gammaUnit draws from a gamma distribution of shape k and mean 1
// (Marsaglia and Tsang).
func gammaUnit(r *rand.Rand, k float64) float64 {
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		if u := r.Float64(); math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v / k
		}
	}
}

func poisson(r *rand.Rand, lambda float64) float64 {
	if lambda > 50 {
		return math.Max(0, math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64()))
	}
	l, k, p := math.Exp(-lambda), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// writeSynth writes a corpus as NAB lays one out: dir/data/<key> and
// dir/labels/combined_windows.json.
func writeSynth(dir string, corpus []*series) error {
	labels := map[string][][2]string{}
	kinds := map[string][]string{}
	for _, s := range corpus {
		kinds[s.key] = append([]string{}, s.kinds...)
		p := filepath.Join(dir, "data", filepath.FromSlash(s.key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		fmt.Fprintln(f, "timestamp,value")
		for i := range s.raw {
			fmt.Fprintf(f, "%s,%s\n", s.raw[i], s.rawVals[i])
		}
		if err := f.Close(); err != nil {
			return err
		}
		ws := [][2]string{}
		for _, w := range s.windows {
			ws = append(ws, [2]string{w[0].Format("2006-01-02 15:04:05.000000"), w[1].Format("2006-01-02 15:04:05.000000")})
		}
		labels[s.key] = ws
	}
	if err := os.MkdirAll(filepath.Join(dir, "labels"), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(labels, "", "  ")
	if err != nil {
		return err
	}
	k, err := json.MarshalIndent(kinds, "", "  ")
	if err != nil {
		return err
	}
	// kinds.json names each window's incident, for looking into what is
	// detected; NAB's tools read only combined_windows.json.
	return errors.Join(os.WriteFile(filepath.Join(dir, "labels", "combined_windows.json"), b, 0o644),
		os.WriteFile(filepath.Join(dir, "labels", "kinds.json"), k, 0o644))
}
