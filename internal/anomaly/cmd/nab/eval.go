package main

// The generalisation report. NAB picks one threshold for the corpus it
// scores, after the fact: that measures how well the detector fits the
// data it was tuned on. Here every tuned value (the threshold, and the
// detector configuration when several candidates are given) is chosen on
// some files and scored on others:
//
//   - leave one category out: each category (fold) in turn is scored with
//     what scores best on all the other categories; NAB's two artificial
//     categories form one fold, as one of them has no anomalies to score;
//   - halves: the files in path order, first half and second half, each
//     scored with what scores best on the other;
//   - fixed: every file at the configuration's own threshold, nothing
//     chosen on the data at all (what a deployment gets).
//
// In-sample figures (chosen and scored on the same files) are given beside
// them: the gap between the two is the overfit.

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// candidate is one detector configuration's scores on a corpus.
type candidate struct {
	name   string
	thr    float64 // its configured threshold (the fixed protocol)
	sweeps []*sweep
	pool   *pool // of sweeps
}

// fold returns the fold of a file: its category, except that the
// artificial* categories form one fold.
func fold(key string) string {
	c := key
	if i := strings.IndexByte(key, '/'); i >= 0 {
		c = key[:i]
	}
	if strings.HasPrefix(c, "artificial") {
		return "artificial*"
	}
	return c
}

// split is one held-out test: train on the files for which train is true,
// score the others.
type split struct {
	name  string
	train func(i int, key string) bool
}

// heldOut is the result of one split under one profile.
type heldOut struct {
	name      string
	files     int
	windows   int
	config    string  // the candidate chosen on the training files
	thr       float64 // its threshold, chosen on the training files
	score     float64 // held-out NAB score
	raw       float64 // its raw score
	inSample  float64 // these files at the corpus-wide in-sample choice
	ownThr    float64 // these files with a threshold optimised on themselves
	atDefault float64 // these files at the configured threshold
}

func subset(sw []*sweep, keep func(i int) bool) []*sweep {
	var out []*sweep
	for i, s := range sw {
		if keep(i) {
			out = append(out, s)
		}
	}
	return out
}

// choose returns the candidate and threshold scoring best on the files
// for which keep is true.
func choose(cands []candidate, p profile, keep func(i int) bool) (int, float64) {
	bestC, bestThr, best := -1, 0.0, math.Inf(-1)
	for ci, c := range cands {
		// The files are the same for every candidate: the raw score
		// ranks them as the normalised one does.
		if thr, raw := c.pool.optimise(p, keep); raw > best {
			bestC, bestThr, best = ci, thr, raw
		}
	}
	return bestC, bestThr
}

// evaluate runs every split under profile p. cands[0] is the default
// configuration, the one the fixed protocol scores.
func evaluate(cands []candidate, splits []split, p profile) (all heldOut, rows []heldOut) {
	keys := make([]string, len(cands[0].sweeps))
	for i, s := range cands[0].sweeps {
		keys[i] = s.key
	}
	everything := func(int) bool { return true }
	allC, allThr := choose(cands, p, everything)
	all = measure("all files (in-sample)", cands, p, everything, allC, allThr, allC, allThr)
	for _, sp := range splits {
		test := func(i int) bool { return !sp.train(i, keys[i]) }
		if n := len(subset(cands[0].sweeps, test)); n == 0 || n == len(keys) {
			continue // nothing to train on, or nothing to test
		}
		c, thr := choose(cands, p, func(i int) bool { return sp.train(i, keys[i]) })
		rows = append(rows, measure(sp.name, cands, p, test, c, thr, allC, allThr))
	}
	return all, rows
}

// measure scores the test files with candidate c at threshold thr, and
// beside it with the in-sample choice (allC, allThr), with a threshold
// optimised on the test files themselves, and at the default
// configuration's own threshold.
func measure(name string, cands []candidate, p profile, test func(int) bool, c int, thr float64, allC int, allThr float64) heldOut {
	sw := subset(cands[c].sweeps, test)
	h := heldOut{name: name, files: len(sw), config: cands[c].name, thr: thr}
	for _, s := range sw {
		h.windows += s.nWin
	}
	r := scoreAt(sw, p, thr)
	h.score, h.raw = r.score, r.raw
	h.inSample = scoreAt(subset(cands[allC].sweeps, test), p, allThr).score
	in := subset(cands[allC].sweeps, test)
	own, _ := cands[allC].pool.optimise(p, test)
	h.ownThr = scoreAt(in, p, own).score
	h.atDefault = scoreAt(subset(cands[0].sweeps, test), p, cands[0].thr).score
	return h
}

// looSplits are the leave-one-category-out splits of the corpus.
func looSplits(keys []string) []split {
	var folds []string
	seen := map[string]bool{}
	for _, k := range keys {
		if f := fold(k); !seen[f] {
			seen[f] = true
			folds = append(folds, f)
		}
	}
	sort.Strings(folds)
	var out []split
	for _, f := range folds {
		out = append(out, split{name: f, train: func(_ int, key string) bool { return fold(key) != f }})
	}
	return out
}

// halfSplits score each half of the files (path order) with what the other
// half chose.
func halfSplits(n int) []split {
	mid := (n + 1) / 2
	return []split{
		{name: "first half", train: func(i int, _ string) bool { return i >= mid }},
		{name: "second half", train: func(i int, _ string) bool { return i < mid }},
	}
}

// report is the whole evaluation of candidates on a corpus, all profiles.
type report struct {
	profile profile
	all     heldOut
	loo     []heldOut
	halves  []heldOut
	// looPooled is the held-out raw scores of all categories summed and
	// normalised over the whole corpus: comparable with all.score.
	looPooled float64
}

func (r report) looMean() float64 { return mean(r.loo, func(h heldOut) float64 { return h.score }) }

func (r report) looWorst() float64 {
	w := math.Inf(1)
	for _, h := range r.loo {
		w = math.Min(w, h.score)
	}
	return w
}

func mean(hs []heldOut, f func(heldOut) float64) float64 {
	s := 0.0
	for _, h := range hs {
		s += f(h)
	}
	return s / float64(len(hs))
}

func evaluateAll(cands []candidate) []report {
	keys := make([]string, len(cands[0].sweeps))
	for i, s := range cands[0].sweeps {
		keys[i] = s.key
	}
	var out []report
	for _, p := range profiles {
		all, loo := evaluate(cands, looSplits(keys), p)
		_, halves := evaluate(cands, halfSplits(len(keys)), p)
		raw := 0.0
		for _, h := range loo {
			raw += h.raw
		}
		out = append(out, report{profile: p, all: all, loo: loo, halves: halves,
			looPooled: normalised(cands[0].sweeps, p, raw)})
	}
	return out
}

func printReport(w io.Writer, reps []report, multi bool) {
	for _, r := range reps {
		fmt.Fprintf(w, "\n== profile %s\n", r.profile.name)
		fmt.Fprintf(w, "%-22s %5s %4s %9s %9s %9s %9s %9s", "held out", "files", "win", "threshold", "held-out", "in-sample", "own-thr", "fixed-thr")
		if multi {
			fmt.Fprintf(w, "  config")
		}
		fmt.Fprintln(w)
		line := func(h heldOut) {
			fmt.Fprintf(w, "%-22s %5d %4d %9.4f %9.2f %9.2f %9.2f %9.2f", h.name, h.files, h.windows, h.thr, h.score, h.inSample, h.ownThr, h.atDefault)
			if multi {
				fmt.Fprintf(w, "  %s", h.config)
			}
			fmt.Fprintln(w)
		}
		for _, h := range r.loo {
			line(h)
		}
		fmt.Fprintf(w, "%-22s %5s %4s %9s %9.2f %9.2f %9.2f %9.2f\n", "mean of categories", "", "", "",
			r.looMean(), mean(r.loo, func(h heldOut) float64 { return h.inSample }),
			mean(r.loo, func(h heldOut) float64 { return h.ownThr }), mean(r.loo, func(h heldOut) float64 { return h.atDefault }))
		fmt.Fprintf(w, "%-22s %5s %4s %9s %9.2f\n", "worst category", "", "", "", r.looWorst())
		fmt.Fprintf(w, "%-22s %5s %4s %9s %9.2f %9.2f\n", "categories pooled", "", "", "", r.looPooled, r.all.score)
		for _, h := range r.halves {
			line(h)
		}
		line(r.all)
	}
}

// printTransfer scores a second corpus (test) with the thresholds chosen
// on the first (train): nothing of test is looked at.
func printTransfer(w io.Writer, title string, train, test candidate, kinds map[string][]string) {
	folds := looSplits(keysOf(test.sweeps))
	fmt.Fprintf(w, "\n== %s: %d files, %d windows, threshold chosen on the other corpus\n", title, len(test.sweeps), windowsOf(test.sweeps))
	fmt.Fprintf(w, "%-20s %9s", "profile", "threshold")
	for _, f := range folds {
		fmt.Fprintf(w, " %9s", f.name)
	}
	fmt.Fprintf(w, " %9s %9s %9s %9s %9s\n", "mean", "worst", "pooled", "fixed-thr", "own-thr")
	for _, p := range profiles {
		thr, _ := train.pool.optimise(p, nil)
		fmt.Fprintf(w, "%-20s %9.4f", p.name, thr)
		sum, worst := 0.0, math.Inf(1)
		for _, f := range folds {
			sw := subset(test.sweeps, func(i int) bool { return !f.train(i, test.sweeps[i].key) })
			s := scoreAt(sw, p, thr).score
			sum += s
			worst = math.Min(worst, s)
			fmt.Fprintf(w, " %9.2f", s)
		}
		own, _ := test.pool.optimise(p, nil)
		fmt.Fprintf(w, " %9.2f %9.2f %9.2f %9.2f %9.2f\n", sum/float64(len(folds)), worst,
			scoreAt(test.sweeps, p, thr).score, scoreAt(test.sweeps, p, test.thr).score, scoreAt(test.sweeps, p, own).score)
	}
	if kinds == nil {
		return
	}
	thr, _ := train.pool.optimise(profiles[0], nil)
	hit, all := map[string]int{}, map[string]int{}
	var names []string
	fp := 0
	for _, s := range test.sweeps {
		for wi, h := range s.hits(thr) {
			k := kinds[s.key][wi]
			if all[k] == 0 {
				names = append(names, k)
			}
			all[k]++
			if h {
				hit[k]++
			}
		}
		fp += s.counts(profiles[0], thr).fp
	}
	sort.Strings(names)
	fmt.Fprintf(w, "windows detected (standard profile):")
	for _, k := range names {
		fmt.Fprintf(w, " %s %d/%d", k, hit[k], all[k])
	}
	fmt.Fprintf(w, "; %d detections outside windows\n", fp)
}

func keysOf(sw []*sweep) []string {
	keys := make([]string, len(sw))
	for i, s := range sw {
		keys[i] = s.key
	}
	return keys
}

func windowsOf(sw []*sweep) int {
	n := 0
	for _, s := range sw {
		n += s.nWin
	}
	return n
}
