package main

// NAB's scorer (Numenta Anomaly Benchmark v1.1: sweeper.py, optimizer.py,
// scorer.py and the normalisation of runner.py), re-implemented so that an
// evaluation can score many thresholds, folds and profiles in memory.
//
//   - Every row of a file gets a sweep score. Inside a labelled window of w
//     rows whose right edge is row r, row i earns
//     tp * scaledSigmoid(-(r-i+1)/w) / scaledSigmoid(-1): most at the left
//     edge. Outside, a detection costs fp (before the file's first window)
//     or fp * scaledSigmoid((i-r)/(w-1)) after a window (r, w): a detection
//     just after a window costs little, one far after it the full fp.
//   - The first min(floor(0.15 n), 750) rows are a probation period and are
//     not scored.
//   - At threshold t a row is a detection iff its anomaly score >= t. A
//     window scores the best sweep score of its detections, or -fn if it
//     has none; every detection outside windows adds its (negative) score.
//   - One threshold for a whole corpus: the distinct anomaly scores are
//     tried in descending order (and 1.1, nothing detected) and the best
//     total wins, ties going to the highest threshold.
//   - Normalised score = 100 (raw - null) / (perfect - null), with
//     perfect = tp * (label windows) and null = -fn * (windows with at
//     least one scorable row).

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// profile is one of NAB's application profiles (cost matrices).
type profile struct {
	name       string
	tp, fn, fp float64
}

var profiles = []profile{
	{"standard", 1, 1, 0.11},
	{"reward_low_FP_rate", 1, 1, 0.22},
	{"reward_low_FN_rate", 1, 2, 0.11},
}

const (
	probationPercent = 0.15
	noDetection      = 1.1 // NAB's threshold for "nothing detected"
)

func scaledSigmoid(x float64) float64 {
	if x > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*x)) - 1
}

var maxTP = scaledSigmoid(-1)

// probation is the number of leading rows of an n-row file that are not
// scored (NAB compares the row index with this float).
func probation(n int) float64 {
	return math.Min(math.Floor(probationPercent*float64(n)), probationPercent*5000)
}

// sweep is the profile-independent scoring data of one file: one entry per
// scorable row.
type sweep struct {
	key    string
	score  []float64 // the detector's anomaly score (NaN read as -Inf)
	unw    []float64 // sweep score before the profile's weight
	win    []int32   // window of the row (index in the file), -1 outside
	nWin   int       // windows of the file, scorable or not
	nScWin int       // windows with at least one scorable row
}

// newSweep computes the sweep of a file from its timestamps, windows and
// the detector's scores, as NAB's Sweeper.calcSweepScore does: windows are
// found by their limits' timestamps and taken in order.
func newSweep(key string, times []time.Time, windows [][2]time.Time, scores []float64) (*sweep, error) {
	n := len(times)
	if len(scores) != n {
		return nil, fmt.Errorf("%s: %d rows but %d scores", key, n, len(scores))
	}
	first := make(map[time.Time]int, n)
	for i, t := range times {
		if _, ok := first[t]; !ok {
			first[t] = i
		}
	}
	for _, w := range windows {
		_, okA := first[w[0]]
		_, okB := first[w[1]]
		if !okA || !okB {
			return nil, fmt.Errorf("%s: window limit %v / %v not among the file's timestamps", key, w[0], w[1])
		}
	}
	prob := probation(n)
	s := &sweep{key: key, nWin: len(windows)}
	next := 0
	inWin := false
	var curID, curRight int
	var curWidth float64
	prevRight, prevWidth := -1, 0.0
	seen := make([]bool, len(windows))
	for i := 0; i < n; i++ {
		t := times[i]
		if next < len(windows) && t.Equal(windows[next][0]) {
			inWin = true
			curID = next
			curRight = first[windows[next][1]]
			curWidth = float64(curRight - first[windows[next][0]] + 1)
			next++
		}
		var u float64
		id := int32(-1)
		if inWin {
			u = scaledSigmoid(-float64(curRight-i+1)/curWidth) / maxTP
			id = int32(curID)
		} else if prevRight < 0 {
			u = -1
		} else {
			pos := math.Inf(1) // a one-row window: NAB would divide by zero
			if d := prevWidth - 1; d > 0 {
				pos = math.Abs(float64(prevRight-i)) / d
			}
			u = scaledSigmoid(pos)
		}
		if float64(i) >= prob {
			a := scores[i]
			if math.IsNaN(a) {
				a = math.Inf(-1)
			}
			s.score = append(s.score, a)
			s.unw = append(s.unw, u)
			s.win = append(s.win, id)
			if id >= 0 && !seen[id] {
				seen[id] = true
				s.nScWin++
			}
		}
		if inWin && t.Equal(windows[curID][1]) {
			prevRight, prevWidth = i, curWidth
			inWin = false
		}
	}
	return s, nil
}

// rawScore is the summed NAB score of files at threshold thr.
func rawScore(sw []*sweep, p profile, thr float64) float64 {
	total := 0.0
	for _, s := range sw {
		best := make([]float64, s.nWin)
		scorable := make([]bool, s.nWin)
		fp := 0.0
		for i, a := range s.score {
			w := s.win[i]
			if w >= 0 {
				if !scorable[w] {
					scorable[w] = true
					best[w] = -p.fn
				}
				if a >= thr && s.unw[i]*p.tp > best[w] {
					best[w] = s.unw[i] * p.tp
				}
			} else if a >= thr {
				fp += s.unw[i] * p.fp
			}
		}
		for _, b := range best {
			total += b // windows without scorable rows add 0
		}
		total += fp
	}
	return total
}

// row is one scorable row of a pooled corpus.
type row struct {
	score float64
	u     float64 // unweighted sweep score
	win   int32   // window id across the corpus, -1 outside windows
	file  int32   // index of the file in the pool
}

// pool is the scorable rows of several files, sorted once by descending
// anomaly score, so that a threshold can be optimised for any subset of
// the files under any profile in one pass.
type pool struct {
	rows   []row
	nScWin []int // per file
	nWin   int   // windows across the corpus
}

func newPool(sw []*sweep) *pool {
	p := &pool{nScWin: make([]int, len(sw))}
	for fi, s := range sw {
		for i := range s.score {
			w := s.win[i]
			if w >= 0 {
				w += int32(p.nWin)
			}
			p.rows = append(p.rows, row{score: s.score[i], u: s.unw[i], win: w, file: int32(fi)})
		}
		p.nWin += s.nWin
		p.nScWin[fi] = s.nScWin
	}
	sort.SliceStable(p.rows, func(i, j int) bool { return p.rows[i].score > p.rows[j].score })
	return p
}

// optimise returns the threshold with the best raw score of the files for
// which keep is true (all files if keep is nil) under profile pr, and that
// score, as NAB's optimiser does: every distinct score is tried, ties go to
// the highest threshold.
func (p *pool) optimise(pr profile, keep func(file int) bool) (thr, best float64) {
	part := make([]float64, p.nWin)
	for i := range part {
		part[i] = -pr.fn
	}
	winSum := 0.0
	for fi, n := range p.nScWin {
		if keep == nil || keep(fi) {
			winSum -= pr.fn * float64(n)
		}
	}
	fpSum := 0.0
	thr, best = noDetection, winSum
	cur := noDetection
	for _, r := range p.rows {
		if keep != nil && !keep(int(r.file)) {
			continue
		}
		if r.score != cur {
			if s := fpSum + winSum; s > best {
				thr, best = cur, s
			}
			cur = r.score
		}
		if r.win >= 0 {
			if v := r.u * pr.tp; v > part[r.win] {
				winSum += v - part[r.win]
				part[r.win] = v
			}
		} else {
			fpSum += r.u * pr.fp
		}
	}
	if s := fpSum + winSum; s > best {
		thr, best = cur, s
	}
	return thr, best
}

// normalised is NAB's 0..100 score of files whose raw score is raw.
func normalised(sw []*sweep, p profile, raw float64) float64 {
	var label, scorable int
	for _, s := range sw {
		label += s.nWin
		scorable += s.nScWin
	}
	null := -p.fn * float64(scorable)
	perfect := p.tp * float64(label)
	if perfect == null {
		return math.NaN() // no windows: NAB's score is undefined
	}
	return 100 * (raw - null) / (perfect - null)
}

// nabResult is the NAB score of a corpus under one profile.
type nabResult struct {
	threshold float64
	raw       float64
	score     float64 // normalised
}

// scoreCorpus optimises the threshold on sw, as NAB does, and scores sw at
// it.
func scoreCorpus(sw []*sweep, p profile) nabResult {
	thr, _ := newPool(sw).optimise(p, nil)
	return scoreAt(sw, p, thr)
}

// scoreAt scores sw at a given threshold.
func scoreAt(sw []*sweep, p profile, thr float64) nabResult {
	raw := rawScore(sw, p, thr)
	return nabResult{threshold: thr, raw: raw, score: normalised(sw, p, raw)}
}

// fileCounts is how a file fared at a threshold: windows detected and
// missed, detections outside windows, and its raw score, with what the
// raw score lost to each: a missed window its penalty and the credit of an
// early detection (lostMissed), the false detections their penalties
// (lostFP), the detected windows the credit of detecting them at their
// start (lostLate). A perfect file's raw score is raw plus the three.
type fileCounts struct {
	hit, missed, fp int
	raw             float64
	lostMissed      float64
	lostFP          float64
	lostLate        float64
}

func (s *sweep) counts(p profile, thr float64) fileCounts {
	var c fileCounts
	hit := s.hits(thr)
	best := make([]float64, s.nWin)
	for i, a := range s.score {
		if a < thr {
			continue
		}
		if w := s.win[i]; w < 0 {
			c.fp++
			c.lostFP -= s.unw[i] * p.fp
		} else {
			best[w] = max(best[w], s.unw[i]*p.tp)
		}
	}
	for w := range hit {
		if hit[w] {
			c.hit++
			c.lostLate += p.tp - best[w]
		}
	}
	c.missed = s.nScWin - c.hit
	c.lostMissed = float64(c.missed) * (p.tp + p.fn)
	c.raw = rawScore([]*sweep{s}, p, thr)
	return c
}

// hits says which windows of the file have a detection at thr.
func (s *sweep) hits(thr float64) []bool {
	hit := make([]bool, s.nWin)
	for i, a := range s.score {
		if w := s.win[i]; w >= 0 && a >= thr {
			hit[w] = true
		}
	}
	return hit
}
