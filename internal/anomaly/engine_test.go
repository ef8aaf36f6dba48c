package anomaly

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

var (
	latencySig = &Signal{Name: "test", Measure: "latency", Kind: Gauge, Unit: "ms", Direction: Up}
	trafficSig = &Signal{Name: "test", Measure: "traffic", Kind: Gauge, Unit: "By/s", Direction: Both}
	errorsSig  = &Signal{Name: "test", Measure: "errors", Kind: Ratio, Unit: "1", Direction: Up}
)

// testConfig shortens the warm-up so tests stay small, and alerts on the
// first anomalous window (TestConfirmWindows covers confirmation).
func testConfig() Config {
	c := DefaultConfig()
	c.Detector.Warmup = 20
	c.Detector.ResolveAfter = 5
	c.ConfirmWindows = 1
	return c
}

type harness struct {
	t      *testing.T
	e      *Engine
	rng    *rand.Rand
	alerts []Alert
}

func newHarness(t *testing.T, cfg Config) *harness {
	e, err := New(cfg)
	require.NoError(t, err)
	return &harness{t: t, e: e, rng: rand.New(rand.NewPCG(3, 5))}
}

func at(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }

func edgeKey(sig *Signal, a, b string) Key {
	return Key{Signal: sig, Edge: EdgeKey{Family: FamilyNetwork, A: a, B: b, N: 80}}
}

func ident(k Key) Identity {
	edge := k.Edge.A + " → " + k.Edge.B
	what := k.Signal.Measure
	return Identity{Subject: what + " " + edge, What: what, Edge: edge,
		Attrs: []Attr{{Key: "source", Value: k.Edge.A}, {Key: "destination", Value: k.Edge.B}}}
}

// obs is one observation of a window.
type obs struct {
	k        Key
	v, d     float64 // value (numerator) and denominator (ratios)
	noAdjust bool
}

// window feeds the observations of window i in one batch, timestamped 5 s
// into the window, and collects the alerts.
func (h *harness) window(i int, os ...obs) []Alert {
	ts := at(i).Add(5 * time.Second)
	h.e.Begin(ts.Add(time.Second))
	for _, o := range os {
		s := h.e.Lookup(&o.k)
		if s == nil {
			s = h.e.Create(&o.k, ident(o.k))
		}
		if s == nil {
			continue
		}
		if o.k.Signal.Kind == Ratio {
			h.e.AddRatio(s, ts.UnixNano(), o.v, o.d)
		} else {
			h.e.AddValue(s, ts.UnixNano(), o.v)
		}
	}
	got := append([]Alert(nil), h.e.Done()...)
	h.alerts = append(h.alerts, got...)
	return got
}

func (h *harness) noisy(v float64) float64 { return v * (1 + 0.05*h.rng.NormFloat64()) }

func TestConfigValidateNamesKeys(t *testing.T) {
	def := DefaultConfig()
	require.NoError(t, def.Validate())
	for key, mut := range map[string]func(*Config){
		"window":                func(c *Config) { c.Window = time.Millisecond },
		"max_series":            func(c *Config) { c.MaxSeries = 0 },
		"series_ttl":            func(c *Config) { c.SeriesTTL = time.Second },
		"min_count":             func(c *Config) { c.MinCount = -1 },
		"min_change":            func(c *Config) { c.MinChange = math.NaN() },
		"quiet_period":          func(c *Config) { c.QuietPeriod = -time.Second },
		"confirm_windows":       func(c *Config) { c.ConfirmWindows = 0 },
		"max_alerts_per_minute": func(c *Config) { c.MaxAlertsPerMinute = 0 },
		"error_score":           func(c *Config) { c.ErrorScore = 2 },
		"exclude_attributes[1]": func(c *Config) { c.ExcludeAttributes = []string{"a", " "} },
		"detector::threshold":   func(c *Config) { c.Detector.Threshold = 0 },
		"detector::warmup":      func(c *Config) { c.Detector.Warmup = -1 },
		"detector::memory":      func(c *Config) { c.Detector.Memory = 1 },
	} {
		c := DefaultConfig()
		mut(&c)
		err := c.Validate()
		require.Error(t, err, key)
		assert.True(t, strings.HasPrefix(err.Error(), key+":"), "%s: %v", key, err)
		_, err = New(c)
		assert.Error(t, err)
	}
}

// A step on one series: one alert with the sentence and values, then a
// resolved alert once it is calm again; the other series stays quiet.
func TestStepFiresOnceThenResolves(t *testing.T) {
	h := newHarness(t, testConfig())
	ab, cd := edgeKey(latencySig, "a", "b"), edgeKey(latencySig, "c", "d")
	i := 0
	for ; i < 80; i++ {
		require.Empty(t, h.window(i, obs{k: ab, v: h.noisy(12)}, obs{k: cd, v: h.noisy(40)}), "window %d", i)
	}
	for ; i < 90; i++ {
		h.window(i, obs{k: ab, v: h.noisy(310)}, obs{k: cd, v: h.noisy(40)})
	}
	require.Len(t, h.alerts, 1)
	a := h.alerts[0]
	assert.Equal(t, Firing, a.State)
	assert.Equal(t, "a → b", a.Edge)
	assert.Equal(t, at(80), a.Since)
	assert.Equal(t, at(81), a.Time, "the window closes when the next one has data")
	assert.Regexp(t, `^latency a → b rose from 1\d(\.\d+)? ms to \d{3} ms$`, a.Body)
	assert.Equal(t, []string{"test latency"}, a.Signals)
	assert.Contains(t, []Severity{SeverityWarn, SeverityError}, a.Severity)
	for ; i < 200 && len(h.alerts) < 2; i++ {
		h.window(i, obs{k: ab, v: h.noisy(12)}, obs{k: cd, v: h.noisy(40)})
	}
	require.Len(t, h.alerts, 2, "resolved within 110 windows of recovery")
	r := h.alerts[1]
	assert.Equal(t, Resolved, r.State)
	assert.Equal(t, a.ID, r.ID)
	assert.Equal(t, SeverityInfo, r.Severity)
	assert.Contains(t, r.Body, "latency a → b returned to normal after ")
	assert.Contains(t, r.Body, "; it had risen from ")
	st := h.e.Stats()
	assert.Equal(t, uint64(1), st.AlertsFiring.Load())
	assert.Equal(t, uint64(1), st.AlertsResolved.Load())
}

// With confirm_windows 2, a one-window excursion is counted as transient
// and not alerted; a step that lasts is alerted one window later, with the
// values of its first window.
func TestConfirmWindows(t *testing.T) {
	cfg := testConfig()
	cfg.ConfirmWindows = 2
	h := newHarness(t, cfg)
	k := edgeKey(latencySig, "a", "b")
	i := 0
	for ; i < 80; i++ {
		h.window(i, obs{k: k, v: h.noisy(12)})
	}
	h.window(i, obs{k: k, v: 20})
	i++
	for ; i < 120; i++ {
		h.window(i, obs{k: k, v: h.noisy(12)})
	}
	assert.Empty(t, h.alerts)
	assert.Equal(t, uint64(1), h.e.Stats().Suppressed[CauseTransient].Load())
	step := i
	for ; i < 125; i++ {
		h.window(i, obs{k: k, v: h.noisy(100)})
	}
	require.Len(t, h.alerts, 1)
	assert.Equal(t, at(step), h.alerts[0].Since)
	assert.Equal(t, at(step+2), h.alerts[0].Time, "confirmed by the second window")
}

// Three signals of one edge fire together: one alert, the most surprising
// first, the others listed. A fourth firing while the incident is open
// joins it (counted as grouped); the incident resolves when all have.
func TestGroupingPerEdge(t *testing.T) {
	h := newHarness(t, testConfig())
	lat, traf := edgeKey(latencySig, "a", "b"), edgeKey(trafficSig, "a", "b")
	errs := edgeKey(errorsSig, "a", "b")
	other := edgeKey(latencySig, "a", "c")
	steady := func(i int, latV, trafV, errV, otherV float64) []Alert {
		return h.window(i, obs{k: lat, v: h.noisy(latV)}, obs{k: traf, v: h.noisy(trafV)},
			obs{k: errs, v: errV, d: 1000}, obs{k: other, v: h.noisy(otherV)})
	}
	i := 0
	for ; i < 80; i++ {
		require.Empty(t, steady(i, 12, 1e6, 1, 5))
	}
	steady(i, 300, 1e3, 1, 5) // latency up, traffic down
	i++
	got := steady(i, 300, 1e3, 1, 5)
	i++
	require.Len(t, got, 1, "%+v", got)
	a := got[0]
	assert.Len(t, a.Signals, 2)
	assert.ElementsMatch(t, []string{"test latency", "test traffic"}, a.Signals)
	assert.Contains(t, a.Body, "; also ")
	t.Log(a.Body)

	// The error ratio rises later, during the incident: grouped, no alert.
	got = steady(i, 300, 1e3, 400, 5)
	i++
	got = append(got, steady(i, 300, 1e3, 400, 5)...)
	i++
	assert.Empty(t, got)
	assert.Equal(t, uint64(1), h.e.Stats().Suppressed[CauseGrouped].Load())
	// Another edge is not grouped with it.
	steady(i, 300, 1e3, 400, 80)
	i++
	got = steady(i, 300, 1e3, 400, 80)
	i++
	require.Len(t, got, 1)
	assert.Equal(t, "a → c", got[0].Edge)

	// Everything back to normal: one resolved alert for the edge a → b.
	var resolved []Alert
	for ; i < 400; i++ {
		for _, a := range steady(i, 12, 1e6, 1, 5) {
			if a.Edge == "a → b" {
				resolved = append(resolved, a)
			}
		}
	}
	require.Len(t, resolved, 1)
	assert.Equal(t, Resolved, resolved[0].State)
	assert.Equal(t, a.ID, resolved[0].ID)
}

// After an alert, the series fires again within the quiet period: counted,
// not alerted. After the quiet period it alerts again. Another signal of
// the same edge is held by the edge's quiet period too.
func TestQuietPeriod(t *testing.T) {
	cfg := testConfig()
	cfg.QuietPeriod = time.Hour
	// A short memory: the detector soon finds a repeat of the same
	// anomaly rare again (with the default, a repeat within hours is not).
	cfg.Detector.Memory = 10
	h := newHarness(t, cfg)
	k := edgeKey(latencySig, "a", "b")
	other := edgeKey(trafficSig, "a", "b")
	i := 0
	feed := func(n int, lat, traffic float64) {
		for end := i + n; i < end; i++ {
			h.window(i, obs{k: k, v: h.noisy(lat)}, obs{k: other, v: h.noisy(traffic)})
		}
	}
	feed(80, 12, 1000)
	first := i
	feed(3, 400, 1000)
	feed(100, 12, 1000)
	require.Len(t, h.alerts, 2, "fired and resolved")
	feed(3, 400, 1000) // 17 minutes after the first: within the quiet period
	feed(100, 12, 1000)
	assert.Len(t, h.alerts, 2, "no alert, no resolved")
	assert.Equal(t, uint64(1), h.e.Stats().Suppressed[CauseQuietPeriod].Load())
	// The edge's other signal, within the edge's quiet period.
	feed(3, 12, 100000)
	feed(100, 12, 1000)
	assert.Len(t, h.alerts, 2)
	assert.Equal(t, uint64(2), h.e.Stats().Suppressed[CauseQuietPeriod].Load())
	feed(60, 12, 1000)
	require.Greater(t, i-first, 360, "past the hour")
	feed(3, 400, 1000)
	require.Len(t, h.alerts, 3)
	assert.Equal(t, Firing, h.alerts[2].State)
}

// Many edges fire at once: the rate limit lets max_alerts_per_minute
// through and counts the rest.
func TestRateLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAlertsPerMinute = 3
	h := newHarness(t, cfg)
	keys := make([]Key, 10)
	for j := range keys {
		keys[j] = edgeKey(latencySig, "a", fmt.Sprintf("b%d", j))
	}
	feed := func(i int, v float64) []Alert {
		os := make([]obs, len(keys))
		for j, k := range keys {
			os[j] = obs{k: k, v: h.noisy(v)}
		}
		return h.window(i, os...)
	}
	i := 0
	for ; i < 80; i++ {
		feed(i, 12)
	}
	var got []Alert
	for ; i < 84; i++ {
		got = append(got, feed(i, 500)...)
	}
	assert.Len(t, got, 3)
	assert.Equal(t, uint64(7), h.e.Stats().Suppressed[CauseRateLimit].Load())
}

// The gates: a fall of a rise-only signal, a rise too small to matter and
// a ratio on too few events are not alerted (and the first two counted).
func TestGates(t *testing.T) {
	cfg := testConfig()
	cfg.MinChange = 0.5
	h := newHarness(t, cfg)
	lat := edgeKey(latencySig, "a", "b")
	small := edgeKey(latencySig, "a", "c")
	errs := edgeKey(errorsSig, "a", "d")
	i := 0
	for ; i < 80; i++ {
		h.window(i, obs{k: lat, v: 100 + h.rng.NormFloat64()}, obs{k: small, v: 100 + h.rng.NormFloat64()},
			obs{k: errs, v: 0, d: 100})
	}
	for ; i < 85; i++ {
		// latency falls, the small one rises by 20 %, errors are 3 of 3.
		h.window(i, obs{k: lat, v: 20}, obs{k: small, v: 120 + h.rng.NormFloat64()}, obs{k: errs, v: 3, d: 3})
	}
	assert.Empty(t, h.alerts)
	st := h.e.Stats()
	assert.Positive(t, st.Suppressed[CauseImprovement].Load())
	assert.Positive(t, st.Suppressed[CauseSmallChange].Load())
	s := h.e.Lookup(&errs)
	assert.Equal(t, uint64(80), s.points, "windows of 3 events are not scored")
	// With volume, the error ratio alerts.
	for ; i < 88; i++ {
		h.window(i, obs{k: lat, v: 100}, obs{k: small, v: 100}, obs{k: errs, v: 50, d: 100})
	}
	require.Len(t, h.alerts, 1)
	assert.Regexp(t, `^errors a → d rose from 0% to 50%$`, h.alerts[0].Body)
}

// max_series refuses new series (counted); series without data for
// series_ttl are forgotten (counted); the gauge of series by state follows.
func TestBoundedTable(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSeries = 5
	cfg.SeriesTTL = time.Minute
	h := newHarness(t, cfg)
	var os []obs
	for j := range 8 {
		os = append(os, obs{k: edgeKey(latencySig, "a", fmt.Sprint(j)), v: 1})
	}
	h.window(0, os...)
	h.window(1, os...)
	assert.Equal(t, 5, h.e.Len())
	assert.Equal(t, uint64(6), h.e.Stats().EvictedLimit.Load(), "3 refused per batch")
	// Only two keep reporting; after the TTL the others are forgotten and
	// new ones fit.
	for i := 2; i < 12; i++ {
		h.window(i, os[:2]...)
	}
	assert.Equal(t, 2, h.e.Len())
	assert.Equal(t, uint64(3), h.e.Stats().EvictedTTL.Load())
	assert.Equal(t, int64(2), h.e.Stats().SeriesLearning.Load())
	h.window(12, os...)
	assert.Equal(t, 5, h.e.Len())
}

// Points older than the open windows are dropped and counted.
func TestLatePoints(t *testing.T) {
	h := newHarness(t, testConfig())
	k := edgeKey(latencySig, "a", "b")
	h.window(10, obs{k: k, v: 1})
	h.window(12, obs{k: k, v: 1})
	h.window(9, obs{k: k, v: 1})  // two windows back: late
	h.window(11, obs{k: k, v: 1}) // open, but this series is already past it
	assert.Equal(t, uint64(2), h.e.Stats().DroppedLate.Load())
	h.e.Begin(at(13))
	s := h.e.Lookup(&k)
	h.e.AddValue(s, at(13).UnixNano(), math.NaN())
	h.e.Done()
	assert.Equal(t, uint64(1), h.e.Stats().DroppedInvalid.Load())
}

// Log-derived rates divide by the time the log records cover, so two
// flushes landing in one window and none in the next give the true rate
// twice, not a spike and a zero.
func TestLogClockRate(t *testing.T) {
	sig := &Signal{Name: "t", Measure: "rate", Kind: Rate, Unit: "1/s", LogClock: true, ZeroFill: true}
	e, err := New(testConfig())
	require.NoError(t, err)
	k := edgeKey(sig, "a", "b")
	var s *Series
	flush := func(ts time.Time, n float64) {
		e.Begin(ts)
		e.SeeLog(ts.UnixNano())
		if s == nil {
			s = e.Create(&k, ident(k))
		}
		e.AddValue(s, ts.UnixNano(), n)
		e.Done()
	}
	var values []float64
	// 100 events per 10 s flush, flushes at x9.99 s, x0.01 s alternating
	// sides of the window boundaries.
	times := []time.Duration{9990, 20010, 29990, 39990, 50010, 59990, 70010, 80010}
	for _, ms := range times {
		flush(t0.Add(ms*time.Millisecond), 100)
		if s.points > uint64(len(values)) {
			values = append(values, s.lastObs)
		}
	}
	require.NotEmpty(t, values)
	for _, v := range values {
		assert.InDelta(t, 10, v, 0.5, "rate per second: %v", values)
	}
}

// A ZeroFill + Backfill series (drops) that appears after a long quiet
// starts from zeros: its first real burst alerts if it has min_count
// events, and is counted as low_volume if not.
func TestBackfillAndCountGate(t *testing.T) {
	drops := &Signal{Name: "network.drop", Measure: "drop.rate", Kind: Rate, Unit: "1/s", Direction: Up,
		LogClock: true, ZeroFill: true, Backfill: true, CountGated: true, Quantum: 1}
	cfg := testConfig()
	cfg.MinCount = 30
	h := newHarness(t, cfg)
	flows := edgeKey(trafficSig, "a", "b")
	dk := Key{Signal: drops, Edge: flows.Edge, Sub: "NETFILTER_DROP"}
	feed := func(i int, n float64) []Alert {
		ts := at(i).Add(5 * time.Second)
		h.e.Begin(ts)
		h.e.SeeLog(ts.UnixNano())
		s := h.e.Lookup(&flows)
		if s == nil {
			s = h.e.Create(&flows, ident(flows))
		}
		h.e.AddValue(s, ts.UnixNano(), h.noisy(1e6))
		if n > 0 {
			d := h.e.Lookup(&dk)
			if d == nil {
				d = h.e.Create(&dk, Identity{Subject: "drop rate of NETFILTER_DROP on a → b", Edge: "a → b"})
			}
			h.e.AddValue(d, ts.UnixNano(), n)
		}
		got := append([]Alert(nil), h.e.Done()...)
		h.alerts = append(h.alerts, got...)
		return got
	}
	i := 0
	for ; i < 100; i++ {
		feed(i, 0)
	}
	feed(i, 25) // 25 drops: rare, but below min_count (30)
	i++
	for ; i < 104; i++ {
		feed(i, 0)
	}
	assert.Empty(t, h.alerts)
	assert.Equal(t, uint64(1), h.e.Stats().Suppressed[CauseLowVolume].Load())
	for ; i < 107; i++ {
		feed(i, 42)
	}
	require.Len(t, h.alerts, 1)
	assert.Regexp(t, `^drop rate of NETFILTER_DROP on a → b rose from 0(\.\d+)?/s to 4.2/s$`, h.alerts[0].Body)
}

func TestSketchQuantiles(t *testing.T) {
	var s sketch
	s.add(0.25)
	q, ok := s.quantile(0.99)
	require.True(t, ok)
	assert.Equal(t, 0.25, q, "one sample is exact")
	s.reset()
	for v := 1; v <= 1000; v++ {
		s.add(float64(v))
	}
	p50, _ := s.quantile(0.5)
	p99, _ := s.quantile(0.99)
	assert.InEpsilon(t, 500, p50, 0.1)
	assert.InEpsilon(t, 990, p99, 0.1)

	// Histogram buckets (0,10] ×90, (10,100] ×9, (100,+Inf) ×1.
	s.reset()
	s.addRange(0, 10, 90)
	s.addRange(10, 100, 9)
	s.addRange(100, math.Inf(1), 1)
	p50, _ = s.quantile(0.5)
	p99, _ = s.quantile(0.99)
	assert.InEpsilon(t, 5.5, p50, 0.25, "linear within (0,10]")
	assert.InEpsilon(t, 100, p99, 0.25, "top of (10,100]")
	_, ok = (&sketch{}).quantile(0.5)
	assert.False(t, ok)
}

func TestCumulativeDelta(t *testing.T) {
	e, err := New(testConfig())
	require.NoError(t, err)
	e.Begin(t0.Add(time.Hour))
	sec := func(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixNano() }
	start := sec(0)
	_, _, ok := e.CumulativeDelta(1, sec(10), start, 100)
	assert.False(t, ok, "the first point sets the base")
	d, from, ok := e.CumulativeDelta(1, sec(20), start, 150)
	require.True(t, ok)
	assert.Equal(t, 50.0, d)
	assert.Equal(t, sec(10), from)
	// Reset: the counter restarted at 25 s and counted 30 since.
	d, from, ok = e.CumulativeDelta(1, sec(30), sec(25), 30)
	require.True(t, ok)
	assert.Equal(t, 30.0, d)
	assert.Equal(t, sec(25), from)
	// Reset without a start time: a value below the previous one.
	d, from, ok = e.CumulativeDelta(1, sec(40), sec(25), 5)
	require.True(t, ok)
	assert.Equal(t, 5.0, d)
	assert.Equal(t, sec(30), from)
	_, _, ok = e.CumulativeDelta(1, sec(40), sec(25), 7)
	assert.False(t, ok, "same timestamp")

	// Histogram counts.
	_, _, ok = e.CumulativeCounts(2, sec(10), start, 7, []float64{1, 2, 3})
	assert.False(t, ok)
	dc, _, ok := e.CumulativeCounts(2, sec(20), start, 7, []float64{2, 2, 5})
	require.True(t, ok)
	assert.Equal(t, []float64{1, 0, 2}, dc)
	_, _, ok = e.CumulativeCounts(2, sec(30), start, 8, []float64{2, 2, 5})
	assert.False(t, ok, "a new layout rebases")
	dc, _, ok = e.CumulativeCounts(2, sec(40), start, 8, []float64{1, 0, 0})
	require.True(t, ok)
	assert.Equal(t, []float64{1, 0, 0}, dc, "reset")
}

// An outage that stays is not "resolved" because the detector got used to
// it: the incident holds until the value comes back, and ends as settled
// if it never does within the quiet period.
func TestIncidentHoldsUntilRecovery(t *testing.T) {
	for _, recover := range []bool{true, false} {
		cfg := testConfig()
		cfg.QuietPeriod = 5 * time.Minute // 30 windows
		h := newHarness(t, cfg)
		k := edgeKey(latencySig, "a", "b")
		i := 0
		for ; i < 60; i++ {
			h.window(i, obs{k: k, v: h.noisy(12)})
		}
		for ; i < 80; i++ { // 20 windows at the new level: long enough for the detector to calm down
			h.window(i, obs{k: k, v: h.noisy(300)})
		}
		require.Len(t, h.alerts, 1, "firing, and not resolved while the value stays up")
		if recover {
			for ; i < 90; i++ {
				h.window(i, obs{k: k, v: h.noisy(12)})
			}
			require.Len(t, h.alerts, 2)
			assert.Contains(t, h.alerts[1].Body, "returned to normal")
			continue
		}
		for ; i < 100; i++ {
			h.window(i, obs{k: k, v: h.noisy(300)})
		}
		require.Len(t, h.alerts, 2)
		assert.Equal(t, Resolved, h.alerts[1].State)
		assert.Contains(t, h.alerts[1].Body, "settled at a new level")
	}
}

// A burst series confirms while it stays far from normal even when it does
// not hold its first window's level (drops during an outage come in bursts).
func TestConfirmBursts(t *testing.T) {
	cfg := testConfig()
	cfg.ConfirmWindows = 2
	h := newHarness(t, cfg)
	k := edgeKey(latencySig, "a", "b")
	i := 0
	for ; i < 60; i++ {
		h.window(i, obs{k: k, v: h.noisy(10)})
	}
	h.window(i, obs{k: k, v: 700})
	h.window(i+1, obs{k: k, v: 230}) // a third of the first burst: still an outage
	h.window(i+2, obs{k: k, v: 10})  // (a window is scored once the next one has data)
	require.Len(t, h.alerts, 1)
	assert.Equal(t, 700.0, h.alerts[0].Observed)
}

// An edge that carried a little traffic and then went idle: its rate
// decays towards zero and then is zero, over and over. Neither the fall
// from a forecast far below one event per window to zero nor the zeros
// that no longer move are a change in the series' own units: no alert,
// counted as a small change.
func TestIdleEdgeDoesNotAlert(t *testing.T) {
	sig := &Signal{Name: "t", Measure: "bytes.rate", Kind: Rate, Unit: "By/s", Direction: Both,
		LogClock: true, ZeroFill: true, Quantum: 1500}
	h := newHarness(t, testConfig())
	k := edgeKey(sig, "a", "b")
	for i := range 400 {
		ts := at(i).Add(5 * time.Second)
		h.e.Begin(ts)
		h.e.SeeLog(ts.UnixNano())
		if i < 40 && h.rng.IntN(3) == 0 {
			s := h.e.Lookup(&k)
			if s == nil {
				s = h.e.Create(&k, ident(k))
			}
			h.e.AddValue(s, ts.UnixNano(), float64(60+h.rng.IntN(600)))
		}
		h.alerts = append(h.alerts, h.e.Done()...)
	}
	for _, a := range h.alerts {
		t.Errorf("alert on an idle edge: %s", a.Body)
	}
	assert.Positive(t, h.e.Stats().Suppressed[CauseSmallChange].Load())
}

// A count's bursts are confirmed across the empty windows between them
// (a queue overflows, drains, overflows again); a lone burst is still
// transient once the detector is calm again.
func TestConfirmCountBursts(t *testing.T) {
	cfg := testConfig()
	cfg.ConfirmWindows = 2
	h := newHarness(t, cfg)
	lone, bursts := edgeKey(errorsSig, "a", "b"), edgeKey(errorsSig, "a", "c")
	errs := func(n float64) float64 {
		if n < 0 {
			return float64(h.rng.IntN(3))
		}
		return n
	}
	for i := range 140 {
		l, b := -1.0, -1.0
		switch i {
		case 80:
			l = 300 // a lone burst
		case 80 + 1, 80 + 2, 80 + 4:
			b = 0
		case 80 + 3:
			b = 250
		}
		if i == 80 {
			b = 300 // bursts with empty windows between them
		}
		h.window(i, obs{k: lone, v: errs(l), d: 1000}, obs{k: bursts, v: errs(b), d: 1000})
	}
	require.NotEmpty(t, h.alerts)
	a := h.alerts[0]
	assert.Equal(t, Firing, a.State)
	assert.Equal(t, uint64(1), h.e.Stats().AlertsFiring.Load())
	assert.Equal(t, "a → c", a.Edge)
	assert.Equal(t, at(80), a.Since)
	assert.Equal(t, at(80+4), a.Time, "confirmed by the next burst")
	assert.Equal(t, 0.3, a.Observed)
	assert.Equal(t, uint64(1), h.e.Stats().Suppressed[CauseTransient].Load(), "the lone burst")
}
