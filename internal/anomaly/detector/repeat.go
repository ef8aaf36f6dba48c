package detector

// repeatView rates how many times in a row the series has repeated its
// last value exactly, against how often it repeats itself: a metric whose
// values never repeat that reports the same value again and again has
// stopped being measured (a frozen exporter, a stuck gauge, a feed that
// fell silent and is filled with its last value or zeros), while a count
// that is often zero, or a gauge that moves in steps, repeats itself all the
// time and is judged by the runs it is used to. The run length is rated
// like a deviation (tailHist), so a run of r repeats where the series has
// never had one has a probability of about 1/(r² n) after n points. A
// series that has never changed value (a ratio that is always 0) has no
// runs to be judged against: its one run is learnt but not rated until the
// series first moves.
type repeatView struct {
	hist   tailHist
	last   float64
	run    int // repeats of last so far
	seen   int
	broken bool // the series has changed value at least once
	warmup int
}

// observe returns the probability of a run of repeats as long as the one
// x continues or breaks, then learns it; 1 while warming up.
func (r *repeatView) observe(x float64) float64 {
	if r.seen > 0 && x == r.last {
		r.run++
	} else {
		r.broken = r.broken || r.seen > 0
		r.run = 0
	}
	r.last = x
	p := r.hist.observe(float64(r.run))
	if r.seen < r.warmup {
		r.seen++
		return 1
	}
	if !r.broken {
		return 1
	}
	return p
}
