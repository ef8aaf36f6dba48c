// Package anomaly is the engine behind the anomaly_detection processor and
// connector: it turns observations into one point per series per window,
// scores each point with a per-series detector, and turns detections into
// alerts, with storm suppression. It imports no collector package:
// internal/anomalycomponent maps pdata to observations and alerts to log
// records, and the components are thin adapters around both.
//
// Data flow, per batch (Begin … Done, not safe for concurrent use):
//
//  1. The caller looks up or creates a Series per observation (Lookup,
//     Create) and adds the observation to it (AddValue, AddRate, AddRatio,
//     AddBuckets, …). Cumulative metric streams go through CumulativeDelta
//     / CumulativeCounts first.
//  2. Time is event time, in fixed windows (Config.Window). A series' window
//     is scored when the series has data in a later window, or when the
//     engine has seen data two windows later (one window of lateness is
//     accepted; older points are dropped and counted). Log-derived rates
//     divide by the time between consecutive windows' newest log records,
//     so a flush that lands on either side of a boundary does not fake a
//     spike and a gap.
//  3. Each window value goes to the series' detector. A detection passes
//     the gates (direction, volume, minimum change), then suppression
//     (quiet period per series, one alert per edge, a global rate limit)
//     and becomes an Alert; the series' return to normal resolves it.
//  4. Done returns the alerts of the batch and, at most once per window,
//     forgets series and streams idle for longer than Config.SeriesTTL.
//
// State is bounded: at most Config.MaxSeries series (≈7 KB each, most of it
// the detector) and as many cumulative streams; everything beyond is refused
// and counted.
package anomaly

import (
	"math"
	"strings"
	"time"

	"github.com/ebpfflow/ebpfflow/internal/anomaly/detector"
)

const noWindow = math.MinInt64

// Engine holds every series of one component. It is not safe for
// concurrent use; the components serialise batches.
type Engine struct {
	cfg      Config
	dcfg     detector.Config
	win      int64 // window, ns
	ttl      int64
	quiet    int64
	backfill int // zeros a new Backfill series starts with, at most

	series map[Key]*Series
	list   []*Series

	streams map[uint64]*stream
	slist   []*stream
	scratch []float64

	now     int64 // processing time of the batch
	clock   int64 // newest admitted event time
	started bool
	cur     int64 // newest window with data
	closed  int64 // newest window closed engine-wide
	open    [2]window
	closing struct {
		idx int64
		sec float64
		ok  bool
	}
	lastLog    int64 // newest log time of the newest closed window with logs
	logWindows int   // closed windows with log data
	lastSweep  int64

	edges   map[EdgeKey]*edge
	pending []candidate
	out     []Alert
	tokens  float64
	tokenAt int64

	stats Stats
}

// window is one of the two open windows.
type window struct {
	idx    int64
	used   bool
	hasLog bool
	logMax int64
}

// Series is one series' state: its detector, the current window's
// aggregate and its alert state.
type Series struct {
	key      Key
	sig      *Signal
	id       Identity
	det      *detector.Detector
	acc      accum
	win      int64 // window of acc; noWindow when empty
	scored   int64 // newest window scored (or skipped)
	born     int64 // first window ZeroFill may fill
	lastSeen int64
	points   uint64
	idx      int // in Engine.list

	lastObs, lastExp float64
	firing           bool // part of an emitted alert's open incident
	muted            bool // the detector's incident is open but was not alerted
	firedAt          int64
	firedObs         float64 // the anomalous value it was alerted on
	firedExp         float64 // and the value expected then
	inc              *incident
	pend             *candidate // a detection waiting for confirm_windows
}

// New returns an engine for cfg.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:      cfg,
		dcfg:     cfg.Detector.toDetector(),
		win:      int64(cfg.Window),
		ttl:      int64(cfg.SeriesTTL),
		quiet:    int64(cfg.QuietPeriod),
		backfill: cfg.Detector.Warmup + 20,
		series:   make(map[Key]*Series),
		streams:  make(map[uint64]*stream),
		edges:    make(map[EdgeKey]*edge),
		closed:   noWindow,
	}
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Stats returns the engine's counters; they may be read concurrently.
func (e *Engine) Stats() *Stats { return &e.stats }

// Begin starts a batch observed at processing time now. Event times more
// than a window ahead of now, and unset ones, are taken as now.
func (e *Engine) Begin(now time.Time) {
	e.now = now.UnixNano()
	e.out = e.out[:0]
}

// Done ends the batch and returns its alerts, valid until the next Begin.
func (e *Engine) Done() []Alert {
	e.flushPending()
	if e.clock-e.lastSweep >= e.win {
		e.sweep()
		e.lastSweep = e.clock
	}
	return e.out
}

func (e *Engine) clamp(t int64) int64 {
	if t <= 0 || t > e.now+e.win {
		return e.now
	}
	return t
}

// admit places event time t in its window, closing older windows as time
// advances. It returns the time used and its window, or false for a point
// older than the open windows (counted as late).
func (e *Engine) admit(t int64) (int64, int64, bool) {
	t = e.clamp(t)
	idx := t / e.win
	if !e.started {
		e.started = true
		e.cur = idx
		e.open[idx&1] = window{idx: idx}
		e.open[(idx-1)&1] = window{idx: idx - 1}
	}
	if idx > e.cur {
		e.advance(idx)
	}
	if idx < e.cur-1 {
		e.stats.DroppedLate.Add(1)
		return 0, 0, false
	}
	if t > e.clock {
		e.clock = t
	}
	e.open[idx&1].used = true
	return t, idx, true
}

// SeeLog advances the log clock with one log record's time. Call it for
// every log record considered, whether or not it produced observations:
// log-derived rates divide by the time the log records cover.
func (e *Engine) SeeLog(t int64) {
	t, idx, ok := e.admit(t)
	if !ok {
		return
	}
	w := &e.open[idx&1]
	w.hasLog = true
	if t > w.logMax {
		w.logMax = t
	}
}

func (e *Engine) advance(n int64) {
	for _, idx := range [2]int64{e.cur - 1, e.cur} {
		if idx > n-2 {
			continue
		}
		if w := e.open[idx&1]; w.idx == idx && w.used {
			e.closeWindow(w)
		}
		if idx > e.closed {
			e.closed = idx
		}
	}
	e.cur = n
	e.open[n&1] = window{idx: n}
	if e.open[(n-1)&1].idx != n-1 {
		e.open[(n-1)&1] = window{idx: n - 1}
	}
}

// closeWindow scores every series that has data in w, and the zeros of
// ZeroFill series that had none while the engine had log data.
func (e *Engine) closeWindow(w window) {
	sec, logOK := 0.0, false
	if w.hasLog {
		if e.lastLog > 0 && w.logMax > e.lastLog {
			sec, logOK = float64(w.logMax-e.lastLog)/1e9, true
		}
		if w.logMax > e.lastLog {
			e.lastLog = w.logMax
		}
		e.logWindows++
	}
	e.closing.idx, e.closing.sec, e.closing.ok = w.idx, sec, logOK
	for _, s := range e.list {
		switch {
		case s.win == w.idx:
			e.closeSeries(s, w.idx)
		case logOK && s.sig.ZeroFill && s.scored < w.idx && w.idx >= s.born && (s.win == noWindow || s.win > w.idx):
			e.score(s, w.idx, 0, 0, s.sig.Quantum/sec)
		}
	}
	e.closing.idx = noWindow
}

// logCovered is the time, in seconds, the log records of window idx cover:
// from the newest log record of the previous window with logs to the newest
// of this one.
func (e *Engine) logCovered(idx int64) (float64, bool) {
	if e.closing.idx == idx {
		return e.closing.sec, e.closing.ok
	}
	w := e.open[idx&1]
	if w.idx != idx || !w.hasLog {
		return 0, false
	}
	prev := e.lastLog
	if p := e.open[(idx-1)&1]; p.idx == idx-1 && p.hasLog {
		prev = p.logMax
	}
	if prev <= 0 || w.logMax <= prev {
		return 0, false
	}
	return float64(w.logMax-prev) / 1e9, true
}

// Lookup returns the series of k, or nil.
func (e *Engine) Lookup(k *Key) *Series { return e.series[*k] }

// Create adds the series k described by id. It returns nil when the table
// is full (counted as anomaly_detection_series_evicted{reason="limit"}).
func (e *Engine) Create(k *Key, id Identity) *Series {
	if s, ok := e.series[*k]; ok {
		return s
	}
	if len(e.list) >= e.cfg.MaxSeries {
		e.stats.EvictedLimit.Add(1)
		return nil
	}
	key := *k
	// Keys and identities are kept: do not pin the batch they came from.
	key.Sub = strings.Clone(key.Sub)
	key.Edge.A, key.Edge.B, key.Edge.C = strings.Clone(key.Edge.A), strings.Clone(key.Edge.B), strings.Clone(key.Edge.C)
	s := &Series{
		key:      key,
		sig:      k.Signal,
		id:       id,
		det:      detector.New(e.dcfg),
		win:      noWindow,
		scored:   noWindow,
		born:     e.cur,
		lastSeen: e.clock,
		idx:      len(e.list),
	}
	if s.sig.Kind == Quantile {
		s.acc.sk = new(sketch)
	}
	if s.sig.Backfill && e.closed != noWindow {
		// No record so far meant no event so far: start from the zeros
		// the engine has been watching, so the first events are judged
		// against them rather than against nothing.
		n := min(e.logWindows, e.backfill)
		s.det.SetResolution(s.sig.Quantum / (float64(e.win) / 1e9))
		for i := n - 1; i >= 0; i-- {
			s.det.Observe(time.Unix(0, (e.closed-int64(i)+1)*e.win), 0)
		}
		s.points = uint64(n)
		s.scored = e.closed
		s.born = e.closed + 1
	}
	e.series[key] = s
	e.list = append(e.list, s)
	return s
}

// slot prepares s's aggregate for the window of time t, scoring the
// previous window of s first if it is still pending.
func (e *Engine) slot(s *Series, t int64) (int64, bool) {
	t, idx, ok := e.admit(t)
	if !ok {
		return 0, false
	}
	if s.win != idx {
		if s.win != noWindow {
			if s.win > idx {
				e.stats.DroppedLate.Add(1)
				return 0, false
			}
			e.closeSeries(s, s.win)
		}
		if idx <= s.scored {
			e.stats.DroppedLate.Add(1)
			return 0, false
		}
		s.win = idx
	}
	if t > s.lastSeen {
		s.lastSeen = t
	}
	return t, true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// AddValue adds a value at time t: a Gauge reading, a Quantile sample, or
// an increment of a LogClock Rate.
func (e *Engine) AddValue(s *Series, t int64, v float64) {
	if !finite(v) {
		e.stats.DroppedInvalid.Add(1)
		return
	}
	if _, ok := e.slot(s, t); !ok {
		return
	}
	switch s.sig.Kind {
	case Gauge:
		s.acc.sum += v
		s.acc.den++
	case Quantile:
		s.acc.sk.add(v)
	case Rate, Ratio:
		s.acc.sum += v
	}
}

// AddRate adds an increment d over (from, t] to a Rate series.
func (e *Engine) AddRate(s *Series, t, from int64, d float64) {
	if !finite(d) || from >= t {
		e.stats.DroppedInvalid.Add(1)
		return
	}
	if _, ok := e.slot(s, t); !ok {
		return
	}
	s.acc.sum += d
	s.acc.addInterval(from, t)
}

// AddRatio adds num events out of den to a Ratio series.
func (e *Engine) AddRatio(s *Series, t int64, num, den float64) {
	if !finite(num) || !finite(den) || den < 0 {
		e.stats.DroppedInvalid.Add(1)
		return
	}
	if _, ok := e.slot(s, t); !ok {
		return
	}
	s.acc.sum += num
	s.acc.den += den
}

// AddBuckets adds histogram bucket counts (explicit bounds, len(counts) ==
// len(bounds)+1) to a Quantile series.
func (e *Engine) AddBuckets(s *Series, t int64, bounds, counts []float64) {
	if len(counts) != len(bounds)+1 || s.acc.sk == nil {
		e.stats.DroppedInvalid.Add(1)
		return
	}
	if _, ok := e.slot(s, t); !ok {
		return
	}
	for i, c := range counts {
		if !(c > 0) {
			continue
		}
		lo, hi := math.Inf(-1), math.Inf(1)
		if i > 0 {
			lo = bounds[i-1]
		} else if bounds[0] > 0 {
			lo = 0 // durations and sizes are not negative
		}
		if i < len(bounds) {
			hi = bounds[i]
		}
		s.acc.sk.addRange(lo, hi, c)
	}
}

// AddExpBuckets adds the positive buckets of an exponential histogram
// (bucket i covers (base^(offset+i), base^(offset+i+1)], base =
// 2^(2^-scale)) and its zero count to a Quantile series.
func (e *Engine) AddExpBuckets(s *Series, t int64, scale, offset int32, counts []float64, zero float64) {
	if s.acc.sk == nil || scale < -10 || scale > 20 {
		e.stats.DroppedInvalid.Add(1)
		return
	}
	if _, ok := e.slot(s, t); !ok {
		return
	}
	if zero > 0 {
		s.acc.sk.addRange(0, 0, zero)
	}
	f := math.Exp2(-float64(scale))
	for i, c := range counts {
		if !(c > 0) {
			continue
		}
		j := float64(int64(offset) + int64(i))
		s.acc.sk.addRange(math.Exp2(j*f), math.Exp2((j+1)*f), c)
	}
}

// closeSeries scores the window idx of s from its aggregate.
func (e *Engine) closeSeries(s *Series, idx int64) {
	v, vol, res, ok := e.value(s, idx)
	s.acc.reset()
	s.win = noWindow
	if ok {
		e.score(s, idx, v, vol, res)
	}
	if idx > s.scored {
		s.scored = idx
	}
}

// value is the window's one value, its volume (the events counted: a
// ratio's numerator, a rate's increments) and its resolution (the value of
// one event; 0 when not a count).
func (e *Engine) value(s *Series, idx int64) (v, vol, res float64, ok bool) {
	a := &s.acc
	switch s.sig.Kind {
	case Gauge:
		if a.den > 0 {
			return a.sum / a.den, a.den, 0, true
		}
	case Ratio:
		if a.den > 0 && a.den >= float64(e.cfg.MinCount) {
			return a.sum / a.den, a.sum, 1 / a.den, true
		}
	case Quantile:
		if q, ok := a.sk.quantile(s.sig.Quantile); ok {
			return q, a.sk.total, 0, true
		}
	case Rate:
		var sec float64
		if s.sig.LogClock {
			sec, ok = e.logCovered(idx)
		} else if a.tMax > a.tMin {
			sec, ok = float64(a.tMax-a.tMin)/1e9, true
		}
		if ok {
			return a.sum / sec, a.sum, s.sig.Quantum / sec, true
		}
	}
	return 0, 0, 0, false
}

// score runs the detector on the value of window idx and acts on its
// verdict.
func (e *Engine) score(s *Series, idx int64, v, vol, res float64) {
	s.det.SetResolution(res)
	r := s.det.Observe(time.Unix(0, (idx+1)*e.win), v)
	s.points++
	s.scored = idx
	e.stats.PointsScored.Add(1)
	if r.Skipped {
		return
	}
	s.lastObs, s.lastExp = v, r.Expected
	switch {
	case s.pend != nil:
		if r.Resolved {
			s.pend = nil
			e.stats.Suppressed[CauseTransient].Add(1)
			return
		}
		e.confirm(s, idx, v)
	case r.Anomalous:
		e.judge(s, idx, v, vol, res, r)
	case r.Resolved && !s.firing:
		e.resolve(s, idx) // a muted detection's incident ends
	case s.firing && !s.det.Firing():
		// The detector is calm again, which also happens when it has got
		// used to a new level: the incident holds until the value is back
		// at least halfway to where it was, or until the quiet period has
		// passed at the new level (it has settled there).
		t := (idx + 1) * e.win
		switch {
		case math.Abs(v-s.firedExp) <= recoverFraction*math.Abs(s.firedObs-s.firedExp):
			e.leave(s, t, resolvedNormal)
		case t-s.firedAt >= e.quiet:
			e.leave(s, t, resolvedSettled)
		}
	}
}

// recoverFraction: an incident is over when the value has come back at
// least this far towards the value expected before it.
const recoverFraction = 0.5

// sweep forgets idle series and streams, closes what they leave behind and
// recounts the series by state.
func (e *Engine) sweep() {
	cutoff := e.clock - e.ttl
	for i := 0; i < len(e.list); {
		s := e.list[i]
		if s.lastSeen < cutoff {
			e.evict(s)
			e.stats.EvictedTTL.Add(1)
			continue // the last series moved to i
		}
		i++
	}
	for i := 0; i < len(e.slist); {
		if st := e.slist[i]; st.lastSeen < cutoff {
			e.evictStream(st)
			continue
		}
		i++
	}
	for k, ed := range e.edges {
		if ed.inc == nil && (ed.lastAlert == 0 || e.clock-ed.lastAlert >= e.quiet) {
			delete(e.edges, k)
		}
	}
	var learning, normal, anomalous int64
	warm := uint64(e.dcfg.Warmup)
	for _, s := range e.list {
		switch {
		case s.det.Firing():
			anomalous++
		case s.points <= warm:
			learning++
		default:
			normal++
		}
	}
	e.stats.SeriesLearning.Store(learning)
	e.stats.SeriesNormal.Store(normal)
	e.stats.SeriesAnomalous.Store(anomalous)
}

func (e *Engine) evict(s *Series) {
	if s.firing && s.inc != nil {
		e.leave(s, e.clock, resolvedExpired)
	}
	last := e.list[len(e.list)-1]
	e.list[s.idx] = last
	last.idx = s.idx
	e.list = e.list[:len(e.list)-1]
	delete(e.series, s.key)
}

// Len returns the number of series held.
func (e *Engine) Len() int { return len(e.list) }

// Each calls f for every series held.
func (e *Engine) Each(f func(*Series)) {
	for _, s := range e.list {
		f(s)
	}
}

// Key returns the series' key.
func (s *Series) Key() Key { return s.key }

// Identity returns the series' description.
func (s *Series) Identity() Identity { return s.id }

// Last returns the value of the newest window scored and the value the
// detector expected for it.
func (s *Series) Last() (observed, expected float64) { return s.lastObs, s.lastExp }

// Points returns the number of windows scored.
func (s *Series) Points() uint64 { return s.points }
