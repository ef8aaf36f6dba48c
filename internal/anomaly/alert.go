package anomaly

import (
	"hash/fnv"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ebpfflow/ebpfflow/internal/anomaly/detector"
)

// State of an alert.
type State uint8

const (
	Firing State = iota + 1
	Resolved
)

func (s State) String() string {
	switch s {
	case Firing:
		return "firing"
	case Resolved:
		return "resolved"
	}
	return ""
}

// Severity of an alert: WARN or ERROR for a firing alert (by score), INFO
// for its resolution.
type Severity uint8

const (
	SeverityInfo Severity = iota + 1
	SeverityWarn
	SeverityError
)

// Alert is one firing or resolved anomaly of one edge.
type Alert struct {
	// ID is the same on an incident's firing and resolved alerts.
	ID       string
	State    State
	Severity Severity
	// Time is the end of the window that fired or resolved.
	Time time.Time
	// Since is the start of the window in which the anomaly began.
	Since time.Time
	// Signal, Measure, Unit, Edge and Series describe the primary series:
	// the one with the highest score when the alert fired.
	Signal, Measure, Unit, Edge string
	Series                      []Attr
	// Observed and Expected are the primary series' values: when firing,
	// the anomalous window and the value expected for it; when resolved,
	// the last window and its expected value.
	Observed, Expected, Score float64
	// Signals lists "signal measure" for every series of the incident,
	// the primary first.
	Signals []string
	// Body is the sentence for people.
	Body string
}

// Cause is why a detection did not become an alert.
type Cause uint8

const (
	// CauseQuietPeriod: the series or its edge alerted less than
	// quiet_period ago.
	CauseQuietPeriod Cause = iota
	// CauseGrouped: another signal of the same edge is already alerting;
	// the series joins that incident.
	CauseGrouped
	// CauseRateLimit: over max_alerts_per_minute.
	CauseRateLimit
	// CauseLowVolume: a rise backed by fewer than min_count events.
	CauseLowVolume
	// CauseSmallChange: below min_change.
	CauseSmallChange
	// CauseImprovement: a fall of a signal where only rises matter.
	CauseImprovement
	// CauseTransient: gone before confirm_windows.
	CauseTransient
	// CauseNoLogsPipeline: found by a processor that has no logs pipeline
	// to put it in (use the connector).
	CauseNoLogsPipeline
	NumCauses
)

var causeNames = [NumCauses]string{"quiet_period", "grouped", "rate_limit", "low_volume", "small_change", "improvement", "transient", "no_logs_pipeline"}

func (c Cause) String() string { return causeNames[c] }

// Stats are the engine's counters, read by self-telemetry callbacks.
type Stats struct {
	// Series by state, recounted once per window.
	SeriesLearning, SeriesNormal, SeriesAnomalous atomic.Int64
	// EvictedTTL counts series forgotten after series_ttl without data;
	// EvictedLimit counts series refused at max_series.
	EvictedTTL, EvictedLimit atomic.Uint64
	// PointsScored counts window values scored.
	PointsScored atomic.Uint64
	// Dropped points: older than the open windows, not finite, or of a
	// cumulative stream refused at the limit.
	DroppedLate, DroppedInvalid, DroppedStreamLimit atomic.Uint64
	// Alerts emitted.
	AlertsFiring, AlertsResolved atomic.Uint64
	// Detections that did not become alerts, by cause.
	Suppressed [NumCauses]atomic.Uint64
}

// CountSuppressed adds n detections suppressed for cause c (for the
// adapters' own causes).
func (st *Stats) CountSuppressed(c Cause, n int) { st.Suppressed[c].Add(uint64(n)) }

type edge struct {
	lastAlert int64
	inc       *incident
}

type incident struct {
	id                 string
	edge               *edge
	primary            *Series
	members            []*Series
	since              int64
	firedExp, firedObs float64
}

// candidate is a detection that passed the gates: the window it began in,
// its values then, and the time it is alerted at (once confirmed).
type candidate struct {
	s               *Series
	idx             int64
	at              int64
	obs, exp, score float64
	unit            float64 // the typical error the detection was measured in
	left            int     // windows still to confirm it
	count           bool    // a count of events: its windows may be empty between bursts
}

// judge applies the gates to a detection; what passes waits in pending for
// suppression and grouping at the end of the batch.
//
// A change is too small when it is below min_change of the expected value,
// when it is none at all, or when it is less than one event of the window
// (res, the value of one event of a count; 0 for gauges): an edge that
// went idle falls from a forecast decaying towards zero to zero, and then
// stops moving, neither of which is a change in the series' own units.
func (e *Engine) judge(s *Series, idx int64, v, vol, res float64, r detector.Result) {
	exp := r.Expected
	change := math.Abs(v - exp)
	cause := NumCauses
	switch {
	case s.sig.Direction == Up && v < exp:
		cause = CauseImprovement
	case s.sig.CountGated && v > exp && vol < float64(e.cfg.MinCount):
		cause = CauseLowVolume
	case change < res || change <= e.cfg.MinChange*math.Abs(exp):
		cause = CauseSmallChange
	}
	if cause != NumCauses {
		s.det.Dismiss()
		e.stats.Suppressed[cause].Add(1)
		return
	}
	c := candidate{s: s, idx: idx, at: (idx + 1) * e.win, obs: v, exp: exp, score: r.Score, left: e.cfg.ConfirmWindows - 1, count: res > 0}
	if r.Deviation > 0 {
		c.unit = math.Abs(v-exp) / r.Deviation
	}
	if c.left <= 0 {
		e.pending = append(e.pending, c)
		return
	}
	s.pend = &c
}

// confirmFraction: a window confirms a detection when its value is at
// least this fraction of the way from the expected value to the anomalous
// one. A step stays near its new level; a noise excursion falls back.
const confirmFraction = 0.75

// burstFraction and burstErrors: how far a window of a burst must still be.
const (
	burstFraction = 0.25
	burstErrors   = 6.0
)

// confirm follows a detection through the windows after it: it is alerted
// once it has lasted confirm_windows (the value stays at least three
// quarters of the way from the expected value to the anomalous one), and dismissed as
// transient as soon as it does not.
//
// A window also confirms it when it is still a quarter of the way there and
// many typical errors from the value expected before the detection: bursty
// series (drops, retransmissions, timeouts) do not hold one level, but an
// outage keeps them far from normal.
//
// A count's window that does not confirm does not dismiss the detection
// either: the events of a fault come in bursts with empty windows between
// them (a queue that overflows, then drains), so the windows that confirm
// need not be consecutive. The detection is transient when the detector's
// incident ends first (resolve_after calm windows, see score) with too few
// windows as far from normal.
func (e *Engine) confirm(s *Series, idx int64, v float64) {
	c := s.pend
	dev := c.obs - c.exp
	along := (v - c.exp) * math.Copysign(1, dev)
	stillRare := along >= burstFraction*math.Abs(dev) && along >= burstErrors*c.unit
	if along < confirmFraction*math.Abs(dev) && !stillRare {
		if c.count {
			return
		}
		s.pend = nil
		s.det.Dismiss()
		e.stats.Suppressed[CauseTransient].Add(1)
		return
	}
	if c.left--; c.left > 0 {
		return
	}
	s.pend = nil
	c.at = (idx + 1) * e.win
	e.pending = append(e.pending, *c)
}

func (e *Engine) resolve(s *Series, idx int64) {
	if s.muted {
		s.muted = false
		return
	}
	if s.firing {
		e.leave(s, (idx+1)*e.win, resolvedNormal)
	}
}

func (e *Engine) mute(s *Series, c Cause) {
	s.muted = true
	e.stats.Suppressed[c].Add(1)
}

func (e *Engine) join(inc *incident, s *Series, c *candidate, t int64) {
	s.firing, s.inc, s.firedAt = true, inc, t
	s.firedObs, s.firedExp = c.obs, c.exp
	inc.members = append(inc.members, s)
}

// How an incident ended.
type resolution uint8

const (
	resolvedNormal  resolution = iota // the value came back
	resolvedExpired                   // the series stopped reporting
	resolvedSettled                   // the value stayed at its new level for the quiet period
)

// leave takes s out of its incident; the last one out resolves it.
func (e *Engine) leave(s *Series, t int64, how resolution) {
	inc := s.inc
	s.firing, s.inc = false, nil
	for i, m := range inc.members {
		if m == s {
			inc.members = append(inc.members[:i], inc.members[i+1:]...)
			break
		}
	}
	if len(inc.members) > 0 {
		return
	}
	inc.edge.inc = nil
	e.emitResolved(inc, t, how)
}

// flushPending turns the batch's detections into alerts, one per edge.
func (e *Engine) flushPending() {
	if len(e.pending) == 0 {
		return
	}
	var order []EdgeKey
	groups := make(map[EdgeKey][]candidate)
	for _, c := range e.pending {
		k := c.s.key.Edge
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], c)
	}
	clear(e.pending)
	e.pending = e.pending[:0]
	for _, k := range order {
		e.fire(k, groups[k])
	}
}

func (e *Engine) fire(k EdgeKey, cs []candidate) {
	ed := e.edges[k]
	if ed == nil {
		ed = &edge{}
		e.edges[k] = ed
	}
	var t int64
	fresh := cs[:0]
	for _, c := range cs {
		s, ct := c.s, c.at
		t = max(t, ct)
		switch {
		case s.firedAt != 0 && ct-s.firedAt < e.quiet:
			e.mute(s, CauseQuietPeriod)
		case ed.inc != nil:
			e.join(ed.inc, s, &c, ct)
			e.stats.Suppressed[CauseGrouped].Add(1)
		default:
			fresh = append(fresh, c)
		}
	}
	if len(fresh) == 0 {
		return
	}
	if ed.lastAlert != 0 && t-ed.lastAlert < e.quiet {
		for _, c := range fresh {
			e.mute(c.s, CauseQuietPeriod)
		}
		return
	}
	if !e.take(t) {
		e.mute(fresh[0].s, CauseRateLimit)
		for _, c := range fresh[1:] {
			e.mute(c.s, CauseGrouped)
		}
		return
	}
	// The primary is the most surprising; the rest are listed with it.
	p := 0
	for i, c := range fresh {
		if c.score > fresh[p].score {
			p = i
		}
	}
	fresh[0], fresh[p] = fresh[p], fresh[0]
	pc := fresh[0]
	inc := &incident{
		edge:     ed,
		primary:  pc.s,
		since:    pc.idx * e.win,
		firedExp: pc.exp,
		firedObs: pc.obs,
	}
	inc.id = incidentID(pc.s.id.Edge, inc.since)
	for i := range fresh {
		e.join(inc, fresh[i].s, &fresh[i], t)
	}
	ed.inc, ed.lastAlert = inc, t
	e.emitFiring(inc, fresh, t)
}

// take draws a token from the global rate limiter (refilled in event time).
func (e *Engine) take(t int64) bool {
	burst := float64(e.cfg.MaxAlertsPerMinute)
	if e.tokenAt == 0 {
		e.tokens, e.tokenAt = burst, t
	}
	if t > e.tokenAt {
		e.tokens = math.Min(burst, e.tokens+float64(t-e.tokenAt)*burst/float64(time.Minute))
		e.tokenAt = t
	}
	if e.tokens >= 1 {
		e.tokens--
		return true
	}
	return false
}

func incidentID(edge string, since int64) string {
	h := fnv.New64a()
	h.Write([]byte(edge))
	h.Write(strconv.AppendInt(nil, since, 10))
	return strconv.FormatUint(h.Sum64(), 16)
}

func (s *Series) signalName() string {
	if s.id.Signal != "" {
		return s.id.Signal
	}
	return s.sig.Name
}

func (s *Series) unit() string {
	if s.id.Unit != "" {
		return s.id.Unit
	}
	return s.sig.Unit
}

func (s *Series) what() string {
	if s.id.What != "" {
		return s.id.What
	}
	return s.id.Subject
}

func (e *Engine) severity(score float64) Severity {
	if score >= e.cfg.ErrorScore {
		return SeverityError
	}
	return SeverityWarn
}

func (e *Engine) emitFiring(inc *incident, cs []candidate, t int64) {
	p := cs[0]
	s := p.s
	a := Alert{
		ID:       inc.id,
		State:    Firing,
		Severity: e.severity(p.score),
		Time:     time.Unix(0, t).UTC(),
		Since:    time.Unix(0, inc.since).UTC(),
		Signal:   s.signalName(),
		Measure:  s.sig.Measure,
		Unit:     s.unit(),
		Edge:     s.id.Edge,
		Series:   s.id.Attrs,
		Observed: p.obs,
		Expected: p.exp,
		Score:    p.score,
	}
	body := changeSentence(s.id.Subject, p.exp, p.obs, s.unit())
	for i, c := range cs {
		a.Signals = append(a.Signals, c.s.signalName()+" "+c.s.sig.Measure)
		if i > 0 {
			sep := "; also "
			if i > 1 {
				sep = ", "
			}
			body += sep + changeSentence(c.s.what(), c.exp, c.obs, c.s.unit())
		}
	}
	a.Body = body
	e.out = append(e.out, a)
	e.stats.AlertsFiring.Add(1)
}

func (e *Engine) emitResolved(inc *incident, t int64, how resolution) {
	s := inc.primary
	a := Alert{
		ID:       inc.id,
		State:    Resolved,
		Severity: SeverityInfo,
		Time:     time.Unix(0, t).UTC(),
		Since:    time.Unix(0, inc.since).UTC(),
		Signal:   s.signalName(),
		Measure:  s.sig.Measure,
		Unit:     s.unit(),
		Edge:     s.id.Edge,
		Series:   s.id.Attrs,
		Observed: s.lastObs,
		Expected: s.lastExp,
		Signals:  []string{s.signalName() + " " + s.sig.Measure},
	}
	a.Body = resolvedSentence(s.id.Subject, inc.firedExp, inc.firedObs, s.lastObs, s.lastExp, s.unit(),
		time.Duration(t-inc.since), how)
	e.out = append(e.out, a)
	e.stats.AlertsResolved.Add(1)
}
