package detector

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	step      = 5 * time.Minute
	perDay    = int(24 * time.Hour / step)
	days      = 14
	n         = days * perDay
	incidentT = 10*perDay + perDay/2 // where injected anomalies start
	learnFor  = 3 * perDay           // alerts before this are learning, not judged
)

var t0 = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

// series is a synthetic metric: base(i) plus noise, with an optional
// change from incidentT on.
type series func(i int, rng *rand.Rand) float64

// diurnal is a daily cycle between 20 and 80 that peaks at the time of day
// of incidentT.
func diurnal(i int) float64 {
	return 50 + 30*math.Cos(2*math.Pi*float64(i-incidentT)/float64(perDay))
}

func gauss(rng *rand.Rand, sd float64) float64 { return rng.NormFloat64() * sd }

func TestDetectorSynthetic(t *testing.T) {
	tests := []struct {
		name   string
		s      series
		detect bool // an alert is expected within an hour of incidentT
	}{
		{"flat", func(i int, _ *rand.Rand) float64 { return 42 }, false},
		{"noisy", func(i int, r *rand.Rand) float64 { return 100 + gauss(r, 5) }, false},
		{"steady seasonal", func(i int, r *rand.Rand) float64 { return diurnal(i) + gauss(r, 1) }, false},
		{"square wave", func(i int, _ *rand.Rand) float64 {
			if i%perDay < perDay/2 {
				return 10
			}
			return 80
		}, false},
		{"latency step", func(i int, r *rand.Rand) float64 {
			v := 12 + gauss(r, 0.5)
			if i >= incidentT {
				v += 300
			}
			return v
		}, true},
		{"small level shift", func(i int, r *rand.Rand) float64 {
			v := 100 + gauss(r, 2)
			if i >= incidentT {
				v += 12
			}
			return v
		}, true},
		{"single spike", func(i int, r *rand.Rand) float64 {
			v := 100 + gauss(r, 2)
			if i == incidentT {
				v += 60
			}
			return v
		}, true},
		{"drop to zero", func(i int, r *rand.Rand) float64 {
			v := 500 + gauss(r, 20)
			if i >= incidentT {
				v = 0
			}
			return v
		}, true},
		{"frozen value", func() series {
			var last float64
			return func(i int, r *rand.Rand) float64 {
				if i < incidentT {
					last = math.Round((100+gauss(r, 5))*100) / 100
				}
				return last // the exporter repeats its last value
			}
		}(), true},
		{"missing daily peak", func(i int, r *rand.Rand) float64 {
			v := diurnal(i) + gauss(r, 1)
			if i >= incidentT && i < incidentT+perDay/4 {
				v = 40 + gauss(r, 1) // the peak does not come
			}
			return v
		}, true},
		{"seasonal shifted up", func(i int, r *rand.Rand) float64 {
			v := diurnal(i) + gauss(r, 1)
			if i >= incidentT {
				v += 15
			}
			return v
		}, true},
	}
	// The default threshold is the one NAB's cost model favours: a deviation
	// with a probability of about 10^-4 is reported, so pure noise yields a
	// false alert every few thousand points. pagingConfig is the stricter
	// setting (10^-6) an operator would page on: it must stay silent on
	// steady data; detection is judged at the default.
	configs := map[string]Config{"default": DefaultConfig(), "paging": pagingConfig()}
	for _, tt := range tests {
		for cname, cfg := range configs {
			t.Run(tt.name+"/"+cname, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				d := New(cfg)
				var early, before, hit, after []int
				for i := 0; i < n; i++ {
					r := d.Observe(t0.Add(time.Duration(i)*step), tt.s(i, rng))
					require.False(t, math.IsNaN(r.Score))
					require.GreaterOrEqual(t, r.Score, 0.0)
					require.LessOrEqual(t, r.Score, 1.0)
					if !r.Anomalous {
						continue
					}
					switch {
					case i < learnFor:
						early = append(early, i)
					case i < incidentT:
						before = append(before, i)
					case i < incidentT+12:
						hit = append(hit, i)
					default:
						after = append(after, i)
					}
				}
				t.Logf("alerts while learning %v, before incident %v, at incident %v, after %v", early, before, hit, after)
				if tt.detect && cname == "default" {
					assert.NotEmpty(t, hit, "incident not detected within an hour")
				}
				steady := len(before)
				if !tt.detect {
					steady += len(after)
				}
				if cname == "paging" {
					assert.Zero(t, steady, "false alerts on steady data")
				} else {
					assert.LessOrEqual(t, steady, (n-learnFor)/1000, "false alert rate on steady data")
				}
			})
		}
	}
}

func pagingConfig() Config {
	c := DefaultConfig()
	c.Threshold = 0.6
	return c
}

func TestDetectorOneAlertPerIncidentAndResolve(t *testing.T) {
	cfg := pagingConfig()
	d := New(cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	fired, resolved := 0, 0
	var r Result
	for i := 0; i < n; i++ {
		v := 100 + gauss(rng, 2)
		if i >= incidentT && i < incidentT+20 {
			v += 80 // a 100-minute incident
		}
		r = d.Observe(t0.Add(time.Duration(i)*step), v)
		if i < learnFor {
			continue
		}
		if r.Anomalous {
			fired++
			assert.InDelta(t, 100, r.Expected, 10, "expected value is the baseline")
			assert.Greater(t, r.Deviation, 10.0)
		}
		if r.Resolved {
			resolved++
		}
	}
	assert.Equal(t, 1, fired)
	assert.Equal(t, 1, resolved)
	assert.False(t, d.Firing())
}

func TestDetectorSkipsNonFinite(t *testing.T) {
	d := New(DefaultConfig())
	for i, v := range []float64{1, math.NaN(), 2, math.Inf(1), math.Inf(-1), 3} {
		r := d.Observe(t0.Add(time.Duration(i)*time.Second), v)
		assert.Equal(t, math.IsNaN(v) || math.IsInf(v, 0), r.Skipped)
		assert.Zero(t, r.Score)
	}
	assert.Equal(t, Stats{Points: 3, Skipped: 3}, d.Stats())
}

func TestStateBytes(t *testing.T) {
	d := New(DefaultConfig())
	before := d.StateBytes()
	for i := 0; i < 50000; i++ {
		d.Observe(t0.Add(time.Duration(i)*time.Minute), float64(i%97))
	}
	assert.Equal(t, before, d.StateBytes(), "state does not grow")
	assert.LessOrEqual(t, d.StateBytes(), 8<<10, "state per series within 8 KB")
	t.Logf("state per series: %d bytes", d.StateBytes())
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for name, mut := range map[string]func(*Config){
		"threshold":     func(c *Config) { c.Threshold = 0 },
		"threshold>1":   func(c *Config) { c.Threshold = 1.5 },
		"warmup":        func(c *Config) { c.Warmup = -1 },
		"resolve_after": func(c *Config) { c.ResolveAfter = 0 },
		"memory":        func(c *Config) { c.Memory = 1 },
	} {
		c := DefaultConfig()
		mut(&c)
		assert.Error(t, c.Validate(), name)
		assert.Panics(t, func() { New(c) }, name)
	}
}

// Dismiss closes the incident just opened: the detector can report the
// next anomaly without waiting for the dismissed one to resolve.
func TestDismiss(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Warmup = 20
	d := New(cfg)
	i := 0
	for ; i < 200; i++ {
		d.Observe(t0.Add(time.Duration(i)*time.Minute), 100+float64(i%5))
	}
	r := d.Observe(t0.Add(time.Duration(i)*time.Minute), 180)
	i++
	require.True(t, r.Anomalous)
	require.True(t, d.Firing())
	d.Dismiss()
	assert.False(t, d.Firing())
	assert.Zero(t, d.Stats().Anomalies)
	r = d.Observe(t0.Add(time.Duration(i)*time.Minute), 1e6)
	assert.True(t, r.Anomalous, "a new incident opens at once")
}

// SetResolution: on a series flat at zero, one event is one unit of
// deviation, not an infinite one; many events still stand out.
func TestResolution(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Warmup = 20
	score := func(res, v float64) Result {
		d := New(cfg)
		d.SetResolution(res)
		for i := 0; i < 300; i++ {
			d.Observe(t0.Add(time.Duration(i)*time.Minute), 0)
		}
		return d.Observe(t0.Add(300*time.Minute), v)
	}
	assert.True(t, score(0, 0.1).Anomalous, "without resolution any event is infinitely rare")
	r := score(0.1, 0.1)
	assert.False(t, r.Anomalous, "one event: %+v", r)
	assert.InDelta(t, 1, r.Deviation, 1e-9)
	assert.True(t, score(0.1, 5).Anomalous, "fifty events")
}
