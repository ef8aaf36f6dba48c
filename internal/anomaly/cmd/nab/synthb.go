package main

// A second synthetic family of server metrics, designed apart from the
// first (synth.go) so that a detector tuned while looking at one can be
// checked on the other: other metrics, other noise and other incident
// models. It is a final check only: nothing is tuned on it.
//
// Six categories, one per kind of metric, at 5-minute points over 10 to 21
// days (so that some series end before a weekly profile has seen two
// weeks):
//
//   - latency: a p99 in milliseconds, log-normal around a level that rises
//     mildly with load, plus garbage-collection pauses with an exponential
//     tail, 0.1 ms resolution;
//   - heap: bytes in use, a sawtooth: allocation grows it with load until
//     a collection drops it back to the live set;
//   - reqrate: requests per second computed from a cumulative counter over
//     the interval (quantised to one request per interval), with counter
//     resets that leave one short interval;
//   - queue: a queue depth (integer), arrivals in log-normal bursts that
//     drain geometrically, many zeros for lightly loaded queues;
//   - cpu: utilisation in percent with AR(1) noise, a daily batch job at a
//     fixed time for some hosts, one decimal;
//   - errors: error counts per interval, Poisson at a low rate plus short
//     correlated bursts.
//
// Load follows a business-hours day (not a sine: a night floor, a morning
// ramp, a plateau, an evening decline) and a week with a weekend factor;
// some series have a holiday (a weekday that behaves as a Sunday) and a
// two-state regime (batch on/off) switching at random every few hours.
// None of these nuisances is labelled, nor are deploys (a restart: the
// heap falls to its live set, a latency step of a few percent), missing
// points and gaps of hours.
//
// Incidents, labelled as NAB labels (a window centred on the onset, 10 %
// of the file divided by the number of incidents wide), zero to three per
// series after its first two days and 20 % of it:
//
//   - latency: a step up (a slow dependency) for an hour to two days; a
//     storm of pauses (a collector thrashing) for one to six hours; a
//     degradation ramping up over hours until a restart;
//   - heap: a leak (the live set grows collection after collection); a
//     collector stall (the heap grows to its limit, stays there, and the
//     process restarts);
//   - reqrate: a drop (an upstream fails over elsewhere) for 30 minutes to
//     six hours; a surge (a retry storm) for 15 minutes to two hours; an
//     outage (zero) for 10 minutes to two hours;
//   - queue: a backlog (the consumer stalls: the depth grows for hours,
//     then drains); a frozen exporter (the last value repeated);
//   - cpu: saturation (pinned at 95-100 % for hours); a runaway process
//     (20 to 50 points more, lasting); the service dies (idle for an hour
//     or more); the daily batch job does not run;
//   - errors: an error storm (ten to fifty times the rate for 15 minutes to
//     three hours); a new steady error rate (three to ten times) that
//     lasts.

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

var synthBKinds = []string{"latency", "heap", "reqrate", "queue", "cpu", "errors"}

// synthBPerKind is the number of series of every kind of the second family.
const synthBPerKind = 17

// synthBCorpus generates perKind series of every kind of the second family.
func synthBCorpus(perKind int, seed uint64) []*series {
	return corpusOf(synthBKinds, perKind, seed, synthBSeries)
}

// bgen is the state of one series of the second family.
type bgen struct {
	r    *rand.Rand
	kind string
	n    int // points
	t0   time.Time

	base       float64 // typical value at full load
	night      float64 // load at night, relative to the day plateau
	rampStart  float64 // hour the morning ramp starts
	rampLen    float64 // its length in hours
	eveStart   float64 // hour the evening decline starts
	weekend    float64 // load factor on Saturdays and Sundays
	holiday    int     // day index of a holiday (-1: none)
	regimeOn   float64 // per point: probability the batch regime starts
	regimeOff  float64 // per point: probability it stops
	regimeGain float64 // load factor while it runs
	batchHour  float64 // cpu: hour of the daily batch job (-1: none)
	batchLen   int     // points
	batchAdd   float64 // percent points it adds
}

// incident is one labelled incident of the second family.
type incident struct {
	kind   string
	start  int
	length int
	size   float64
}

func (a incident) on(i int) bool { return i >= a.start && i < a.start+a.length }

func newBGen(kind string, idx int, seed uint64) *bgen {
	h := fnv.New64a()
	fmt.Fprintf(h, "second family %s #%d", kind, idx)
	r := rand.New(rand.NewPCG(h.Sum64(), 0x5eed0000+seed))
	g := &bgen{r: r, kind: kind, holiday: -1, batchHour: -1}
	g.n = synthPerDay * (10 + r.IntN(12))
	g.t0 = time.Date(2023, time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	g.night = uniform(r, 0.05, 0.6)
	g.rampStart = uniform(r, 5, 9)
	g.rampLen = uniform(r, 1, 4)
	g.eveStart = uniform(r, 16, 21)
	g.weekend = 1
	if r.Float64() < 0.7 {
		g.weekend = uniform(r, 0.3, 0.95)
	}
	if r.Float64() < 0.3 {
		g.holiday = 2 + r.IntN(g.n/synthPerDay-2)
	}
	if r.Float64() < 0.35 {
		g.regimeOn = 1 / uniform(r, 36, 288)
		g.regimeOff = 1 / uniform(r, 6, 72)
		g.regimeGain = uniform(r, 1.2, 2)
	}
	switch kind {
	case "latency":
		g.base = logUniform(r, 2, 800)
	case "heap":
		g.base = logUniform(r, 5e7, 8e9)
	case "reqrate":
		g.base = logUniform(r, 0.05, 3000)
	case "queue":
		g.base = logUniform(r, 0.02, 50)
	case "cpu":
		g.base = logUniform(r, 2, 70)
		if r.Float64() < 0.4 {
			g.batchHour = float64(r.IntN(24))
			g.batchLen = 6 + r.IntN(13)
			g.batchAdd = uniform(r, 5, 40)
		}
	case "errors":
		g.base = logUniform(r, 0.02, 5)
	}
	return g
}

// load is the business-hours and weekly load factor at t, in (0, 1].
func (g *bgen) load(t time.Time) float64 {
	day := int(t.Sub(g.t0) / (24 * time.Hour))
	wd := t.Weekday()
	weekend := wd == time.Saturday || wd == time.Sunday || day == g.holiday
	h := float64(t.Hour()) + float64(t.Minute())/60
	var f float64
	switch {
	case h < g.rampStart:
		f = g.night
	case h < g.rampStart+g.rampLen:
		f = g.night + (1-g.night)*(h-g.rampStart)/g.rampLen
	case h < g.eveStart:
		f = 1
	default:
		f = 1 - (1-g.night)*math.Min(1, (h-g.eveStart)/3)
	}
	if weekend {
		f *= g.weekend
	}
	return f
}

func synthBSeries(kind string, idx int, seed uint64) *series {
	g := newBGen(kind, idx, seed)
	r := g.r

	k := []int{0, 0, 1, 1, 1, 1, 2, 2, 2, 3}[r.IntN(10)]
	width := g.n / 10
	if k > 0 {
		width /= k
	}
	first := max(g.n/5, 2*synthPerDay)
	var incs []incident
	for tries := 0; len(incs) < k && tries < 100; tries++ {
		s := first + r.IntN(g.n-first-width/2)
		ok := true
		for _, a := range incs {
			if abs(a.start-s) < width+width/2 {
				ok = false
			}
		}
		if ok {
			incs = append(incs, g.incidentAt(s))
		}
	}
	sort.Slice(incs, func(i, j int) bool { return incs[i].start < incs[j].start })

	// Unlabelled restarts (deploys) and counter resets.
	var restarts []int
	for j := r.IntN(3); j > 0; j-- {
		restarts = append(restarts, r.IntN(g.n))
	}
	restartAt := func(i int) bool {
		for _, x := range restarts {
			if x == i {
				return true
			}
		}
		return false
	}
	deploy := 1.0

	s := &series{key: kind + "/" + kind + "_" + strconv.Itoa(idx) + ".csv"}
	st := bstate{live: 0.3 + 0.4*r.Float64()}
	st.heap = st.live
	regime := false
	for i := 0; i < g.n; i++ {
		t := g.t0.Add(time.Duration(i) * synthStep)
		if regime && r.Float64() < g.regimeOff {
			regime = false
		} else if !regime && g.regimeOn > 0 && r.Float64() < g.regimeOn {
			regime = true
		}
		ld := g.load(t)
		if regime {
			ld *= g.regimeGain
		}
		restart := restartAt(i)
		if restart && kind == "latency" {
			deploy *= math.Exp(0.05 * r.NormFloat64())
		}
		var active []incident
		for _, a := range incs {
			if a.on(i) {
				active = append(active, a)
			}
		}
		v := g.value(i, t, ld*deploy, restart, active, &st)
		s.times = append(s.times, t)
		s.values = append(s.values, v)
	}
	for _, a := range incs {
		s.windows = append(s.windows, [2]time.Time{
			s.times[max(0, a.start-width/2)], s.times[min(g.n-1, a.start+width/2)],
		})
		s.kinds = append(s.kinds, a.kind)
	}
	dropPoints(r, s, 0.2, 0.01, 0.15) // scattered missing points, a gap of hours
	for i := range s.times {
		s.raw = append(s.raw, s.times[i].Format("2006-01-02 15:04:05"))
		s.rawVals = append(s.rawVals, strconv.FormatFloat(s.values[i], 'f', -1, 64))
	}
	return s
}

// bstate is what a series carries from point to point.
type bstate struct {
	heap, live float64 // heap: in units of the limit
	counter    float64 // reqrate: the cumulative counter
	queue      float64
	ar         float64 // cpu: AR(1) noise
	burst      int     // errors: points left of a burst
	burstRate  float64
	last       float64
	stuck      bool
}

// value draws point i (at t, load ld) of the series, with the active
// incidents applied.
func (g *bgen) value(i int, t time.Time, ld float64, restart bool, active []incident, st *bstate) float64 {
	r := g.r
	has := func(kind string) (incident, bool) {
		for _, a := range active {
			if a.kind == kind {
				return a, true
			}
		}
		return incident{}, false
	}
	switch g.kind {
	case "latency":
		level := g.base * math.Pow(0.2+ld, 0.3)
		if a, ok := has("step"); ok {
			level *= a.size
		}
		if a, ok := has("ramp"); ok {
			level *= 1 + (a.size-1)*float64(i-a.start+1)/float64(a.length)
		}
		v := level * math.Exp(0.15*r.NormFloat64())
		pause := 0.01
		if _, ok := has("pauses"); ok {
			pause = 0.4
		}
		if r.Float64() < pause {
			v += level * r.ExpFloat64() * 3
		}
		return math.Round(v*10) / 10
	case "heap":
		limit := g.base
		if restart {
			st.heap = st.live * 0.5
		}
		if a, ok := has("leak"); ok {
			st.live = math.Min(0.9, st.live+a.size/float64(a.length))
		}
		if _, ok := has("stall"); ok {
			st.heap = math.Min(1, st.heap+0.03+0.02*r.Float64())
			if st.heap >= 1 && r.Float64() < 0.05 { // out of memory: restart
				st.heap = st.live * 0.5
			}
			return math.Round(st.heap * limit)
		}
		st.heap += (0.01 + 0.05*ld) * (0.5 + r.Float64())
		if st.heap > 0.85 {
			st.heap = st.live * (1 + 0.05*r.Float64())
		}
		return math.Round(st.heap * limit)
	case "reqrate":
		rate := g.base * ld
		if a, ok := has("drop"); ok {
			rate *= a.size
		}
		if a, ok := has("surge"); ok {
			rate *= a.size
		}
		if _, ok := has("outage"); ok {
			rate = 0
		}
		n := poisson(r, rate*synthStep.Seconds())
		if restart { // a counter reset: only the part after it is counted
			n = math.Floor(n * r.Float64())
		}
		st.counter += n
		return n / synthStep.Seconds()
	case "queue":
		if _, ok := has("frozen"); ok {
			return st.last
		}
		a, backlog := has("backlog")
		if !backlog {
			st.queue *= uniform(r, 0.3, 0.8) // the consumer drains it
		}
		if r.Float64() < math.Min(1, 0.3*ld) {
			st.queue += g.base * math.Exp(1.2*r.NormFloat64())
		}
		if backlog { // and the producer keeps up a trickle
			st.queue += a.size * math.Max(g.base, 1) / 12
		}
		st.last = math.Round(st.queue)
		return st.last
	case "cpu":
		st.ar = 0.8*st.ar + r.NormFloat64()
		v := g.base*ld + 0.04*g.base*st.ar + 0.3*math.Abs(r.NormFloat64())
		h := float64(t.Hour()) + float64(t.Minute())/60
		if g.batchHour >= 0 && h >= g.batchHour && h < g.batchHour+float64(g.batchLen)/12 {
			if _, ok := has("nobatch"); !ok {
				v += g.batchAdd
			}
		}
		if a, ok := has("runaway"); ok {
			v += a.size
		}
		if _, ok := has("saturated"); ok {
			v = 95 + 5*r.Float64()
		}
		if _, ok := has("dead"); ok {
			v = 0.5 + r.Float64()
		}
		return math.Round(math.Min(math.Max(v, 0), 100)*10) / 10
	case "errors":
		rate := g.base * (0.3 + 0.7*ld)
		if a, ok := has("storm"); ok {
			rate *= a.size
		}
		if a, ok := has("newrate"); ok {
			rate *= a.size
		}
		if st.burst > 0 {
			st.burst--
			rate += st.burstRate
		} else if r.Float64() < 0.005 {
			st.burst = 1 + r.IntN(3)
			st.burstRate = g.base * math.Exp(1+r.NormFloat64())
		}
		return poisson(r, rate)
	}
	return 0
}

// incidentAt draws an incident of a kind the metric has, starting at s.
func (g *bgen) incidentAt(s int) incident {
	r := g.r
	kinds := map[string][]string{
		"latency": {"step", "pauses", "ramp"},
		"heap":    {"leak", "stall"},
		"reqrate": {"drop", "surge", "outage"},
		"queue":   {"backlog", "frozen"},
		"cpu":     {"saturated", "runaway", "dead", "nobatch"},
		"errors":  {"storm", "newrate"},
	}[g.kind]
	switch {
	case g.kind == "cpu" && g.batchHour < 0:
		kinds = kinds[:3] // no job to miss
	case g.kind == "cpu" && g.base < 10:
		kinds = []string{"saturated", "runaway", "nobatch"} // idle would look like night
	case g.kind == "queue" && g.base < 2:
		kinds = kinds[:1] // a mostly empty queue frozen looks like itself
	}
	if g.kind == "cpu" && g.base < 10 && g.batchHour < 0 {
		kinds = kinds[:2]
	}
	a := incident{kind: kinds[r.IntN(len(kinds))], start: s}
	hours := func(lo, hi float64) int { return int(uniform(r, lo, hi) * 12) }
	switch a.kind {
	case "step":
		a.length, a.size = hours(1, 48), uniform(r, 1.5, 5)
	case "pauses":
		a.length = hours(1, 6)
	case "ramp":
		a.length, a.size = hours(2, 12), uniform(r, 2, 4)
	case "leak":
		a.length, a.size = hours(6, 72), uniform(r, 0.2, 0.5)
	case "stall":
		a.length = hours(1, 6)
	case "drop":
		a.length, a.size = hours(0.5, 6), uniform(r, 0.2, 0.6)
	case "surge":
		a.length, a.size = hours(0.25, 2), uniform(r, 2, 5)
	case "outage":
		a.length = hours(1.0/6, 2)
	case "backlog":
		a.length, a.size = hours(1, 6), uniform(r, 1, 5)
	case "frozen":
		a.length = hours(2, 24)
	case "saturated":
		a.length = hours(1, 12)
	case "runaway":
		a.length, a.size = g.n-s, uniform(r, 20, 50)
		if r.Float64() < 0.5 {
			a.length = hours(6, 48)
		}
	case "dead":
		a.length = hours(1, 12)
	case "nobatch":
		// The job's next run does not happen: the incident starts at it.
		day := s / synthPerDay
		a.start = day*synthPerDay + int(g.batchHour*12)
		if a.start < s {
			a.start += synthPerDay
		}
		if a.start+g.batchLen > g.n {
			a.start -= synthPerDay
		}
		a.length = g.batchLen
	case "storm":
		a.length, a.size = hours(0.25, 3), uniform(r, 10, 50)
	case "newrate":
		a.length, a.size = g.n-s, uniform(r, 3, 10)
		if r.Float64() < 0.5 {
			a.length = hours(12, 72)
		}
	}
	a.length = max(1, min(a.length, g.n-a.start))
	return a
}
