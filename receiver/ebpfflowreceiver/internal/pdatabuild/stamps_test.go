package pdatabuild

import (
	mrand "math/rand/v2"
	"testing"
	"time"
)

// Every stamp must read exactly like time.Format's, across seconds,
// zones, whole seconds and trailing zeros, and stay intact after later
// stamps fill and replace the buffer.
func TestStampsMatchTimeFormat(t *testing.T) {
	var s stamps
	rng := mrand.New(mrand.NewPCG(1, 2))
	zone := time.FixedZone("x", -5*3600-30*60)
	base := time.Date(2026, 12, 5, 5, 11, 56, 0, time.UTC)
	type pair struct {
		got  string
		want time.Time
	}
	var all []pair
	for i := range 20000 {
		at := base.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
		switch i % 5 {
		case 0:
			at = at.Truncate(time.Second)
		case 1:
			at = at.Truncate(time.Millisecond)
		case 2:
			at = at.In(zone)
		case 3:
			at = at.Add(time.Duration(rng.Int64N(int64(100 * 365 * 24 * time.Hour))))
		}
		all = append(all, pair{s.format(at), at})
	}
	for _, p := range all {
		if want := p.want.UTC().Format(time.RFC3339Nano); p.got != want {
			t.Fatalf("format(%v) = %q, want %q", p.want, p.got, want)
		}
	}
}
