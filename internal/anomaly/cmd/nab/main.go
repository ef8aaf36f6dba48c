// Command nab runs the anomaly detector over a corpus laid out like the
// Numenta Anomaly Benchmark (NAB) and measures how well it generalises.
//
// Each file is one series, fed point by point in order through the same
// detector core and default configuration the anomaly_detection processor
// uses: no look-ahead, no per-file settings. The runner then scores the
// detections with NAB's scoring rules (nabscore.go) and prints, for NAB's
// three profiles, the score of every category held out from the choice of
// the threshold, of each half of the files held out the same way, and the
// in-sample score NAB itself reports (eval.go).
//
//	go run ./internal/anomaly/cmd/nab -data DIR [-labels FILE] [-out DIR] [-explain]
//
// DIR holds <category>/<file>.csv files (timestamp,value); FILE is NAB's
// combined_windows.json (default: DIR/../labels/combined_windows.json).
// -out also writes one NAB result CSV per input (timestamp,value,
// anomaly_score) under the same relative path, for NAB's own scorer.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ebpfflow/ebpfflow/internal/anomaly/detector"
)

func main() {
	var o options
	flag.StringVar(&o.data, "data", "", "NAB data directory: <category>/<file>.csv (required)")
	flag.StringVar(&o.labels, "labels", "", "NAB label windows (default: DATA/../labels/combined_windows.json)")
	flag.StringVar(&o.out, "out", "", "also write one NAB result CSV per input under this directory")
	flag.BoolVar(&o.explain, "explain", false, "with -out: also write each point's expected value, deviation and basis")
	flag.StringVar(&o.score, "score", "", "evaluate the anomaly scores of NAB result files under this directory instead of running the detector")
	flag.BoolVar(&o.synth, "synth", false, "also score a synthetic corpus of server metrics (synth.go) with the thresholds chosen on DATA")
	flag.Uint64Var(&o.synthSeed, "synth-seed", 1, "seed of the synthetic corpus")
	flag.StringVar(&o.synthOut, "synth-out", "", "write the synthetic corpus here (data/ and labels/, as NAB lays them out) and exit")
	flag.BoolVar(&o.synthB, "synthb", false, "also score the second synthetic family of server metrics (synthb.go) with the thresholds chosen on DATA")
	flag.StringVar(&o.synthBOut, "synthb-out", "", "write the second synthetic family here and exit")
	flag.StringVar(&o.grid, "grid", "", "also try these configurations, each held-out split choosing among them on its training files: key=v1,v2;key=v1,... (keys: threshold, warmup, resolve_after, memory)")
	flag.BoolVar(&o.perFile, "v", false, "also print each file's detected and missed windows and false positives (standard profile, in-sample threshold)")
	flag.Float64Var(&o.threshold, "threshold", 0.5, "with -score: the fixed threshold of the scores evaluated")
	flag.Parse()
	if o.synthOut != "" || o.synthBOut != "" {
		var err error
		if o.synthOut != "" {
			err = writeSynth(o.synthOut, synthCorpus(synthPerKind, o.synthSeed))
		}
		if o.synthBOut != "" && err == nil {
			err = writeSynth(o.synthBOut, synthBCorpus(synthBPerKind, o.synthSeed))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "nab:", err)
			os.Exit(1)
		}
		return
	}
	if o.data == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "nab: -data is required: the data directory of a NAB-style corpus (make nab NAB_DATA=<dir>)")
		flag.Usage()
		os.Exit(2)
	}
	if o.labels == "" {
		o.labels = filepath.Join(o.data, "..", "labels", "combined_windows.json")
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nab:", err)
		os.Exit(1)
	}
}

type options struct {
	data, labels, out string
	explain, perFile  bool
	synth, synthB     bool
	synthOut          string
	synthBOut         string
	synthSeed         uint64
	grid              string
	score             string  // results to evaluate instead of the detector's
	threshold         float64 // their fixed threshold
}

func run(o options, w io.Writer) error {
	corpus, err := loadCorpus(o.data, o.labels)
	if err != nil {
		return err
	}
	if o.score != "" {
		c, err := readCandidate(o.score, o.threshold, corpus)
		if err != nil {
			return err
		}
		printNAB(w, c, o.perFile)
		printReport(w, evaluateAll([]candidate{c}), false)
		return nil
	}
	cfg := detector.DefaultConfig()
	start := time.Now()
	c, stats, err := runCandidate("default", cfg, corpus, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "nab: %d files, %d points (%d skipped), %d detections at threshold %.2f, %v\n",
		len(corpus), stats.Points, stats.Skipped, stats.Anomalies, cfg.Threshold, time.Since(start).Round(time.Millisecond))
	printNAB(w, c, o.perFile)
	cands := []candidate{c}
	cfgs, err := gridConfigs(cfg, o.grid)
	if err != nil {
		return err
	}
	for _, gc := range cfgs {
		gcand, _, err := runCandidate(gc.name, gc.cfg, corpus, options{})
		if err != nil {
			return err
		}
		cands = append(cands, gcand)
	}
	printReport(w, evaluateAll(cands), len(cands) > 1)
	for _, f := range []struct {
		on    bool
		title string
		gen   func() []*series
	}{
		{o.synth, "synthetic server metrics", func() []*series { return synthCorpus(synthPerKind, o.synthSeed) }},
		{o.synthB, "synthetic server metrics, second family", func() []*series { return synthBCorpus(synthBPerKind, o.synthSeed) }},
	} {
		if !f.on {
			continue
		}
		sc := f.gen()
		kinds := map[string][]string{}
		for _, s := range sc {
			kinds[s.key] = s.kinds
		}
		t, _, err := runCandidate("default", cfg, sc, options{})
		if err != nil {
			return err
		}
		printTransfer(w, f.title, c, t, kinds)
	}
	return nil
}

// synthPerKind is the number of synthetic series of each kind of metric.
const synthPerKind = 25

// printNAB prints what NAB itself reports: the corpus score at the
// threshold optimised on it, per profile, in full precision.
func printNAB(w io.Writer, c candidate, perFile bool) {
	for _, p := range profiles {
		r := scoreCorpus(c.sweeps, p)
		fmt.Fprintf(w, "NAB %-20s threshold %.10g raw %.10f score %.10f\n", p.name, r.threshold, r.raw, r.score)
		r = scoreAt(c.sweeps, p, c.thr)
		fmt.Fprintf(w, "NAB %-20s threshold %.10g raw %.10f score %.10f (fixed)\n", p.name, r.threshold, r.raw, r.score)
	}
	if !perFile {
		return
	}
	thr := scoreCorpus(c.sweeps, profiles[0]).threshold
	const head = "%-55s %4s %4s %4s %8s %8s %8s %8s\n"
	const line = "%-55s %4d %4d %4d %8.3f %8.3f %8.3f %8.3f\n"
	fmt.Fprintf(w, head, "file (standard profile, in-sample threshold)", "hit", "miss", "fp", "raw", "-missed", "-fp", "-late")
	var folds []string
	byFold := map[string]*fileCounts{}
	for _, s := range c.sweeps {
		k := s.counts(profiles[0], thr)
		fmt.Fprintf(w, line, s.key, k.hit, k.missed, k.fp, k.raw, k.lostMissed, k.lostFP, k.lostLate)
		f := byFold[fold(s.key)]
		if f == nil {
			f = &fileCounts{}
			byFold[fold(s.key)] = f
			folds = append(folds, fold(s.key))
		}
		f.hit, f.missed, f.fp = f.hit+k.hit, f.missed+k.missed, f.fp+k.fp
		f.raw, f.lostMissed, f.lostFP, f.lostLate = f.raw+k.raw, f.lostMissed+k.lostMissed, f.lostFP+k.lostFP, f.lostLate+k.lostLate
	}
	fmt.Fprintf(w, head, "category: raw score lost to missed, false, late", "hit", "miss", "fp", "raw", "-missed", "-fp", "-late")
	for _, f := range folds {
		k := byFold[f]
		fmt.Fprintf(w, line, f, k.hit, k.missed, k.fp, k.raw, k.lostMissed, k.lostFP, k.lostLate)
	}
}

// runCandidate scores every series of the corpus with a fresh detector of
// configuration cfg, and writes result files if asked to.
func runCandidate(name string, cfg detector.Config, corpus []*series, o options) (candidate, detector.Stats, error) {
	c := candidate{name: name, thr: cfg.Threshold}
	var total detector.Stats
	for _, s := range corpus {
		d := detector.New(cfg)
		res := make([]detector.Result, len(s.values))
		scores := make([]float64, len(s.values))
		for i, v := range s.values {
			res[i] = d.Observe(s.times[i], v)
			scores[i] = res[i].Score
		}
		st := d.Stats()
		total.Points += st.Points
		total.Skipped += st.Skipped
		total.Anomalies += st.Anomalies
		if o.out != "" {
			if err := writeResults(filepath.Join(o.out, filepath.FromSlash(s.key)), s, res, o.explain); err != nil {
				return c, total, fmt.Errorf("%s: %w", s.key, err)
			}
		}
		sw, err := newSweep(s.key, s.times, s.windows, scores)
		if err != nil {
			return c, total, err
		}
		c.sweeps = append(c.sweeps, sw)
	}
	c.pool = newPool(c.sweeps)
	return c, total, nil
}

// writeResults writes one NAB result file: timestamp,value,anomaly_score
// (and with explain the detector's reading of each point, for looking into
// what a detection or a miss was based on).
func writeResults(path string, s *series, res []detector.Result, explain bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if explain {
		io.WriteString(w, "timestamp,value,anomaly_score,expected,deviation,basis\n")
	} else {
		io.WriteString(w, "timestamp,value,anomaly_score\n")
	}
	for i, r := range res {
		score := strconv.FormatFloat(r.Score, 'f', 6, 64)
		if explain {
			fmt.Fprintf(w, "%s,%s,%s,%g,%.2f,%s\n", s.raw[i], s.rawVals[i], score, r.Expected, r.Deviation, r.Basis)
		} else {
			fmt.Fprintf(w, "%s,%s,%s\n", s.raw[i], s.rawVals[i], score)
		}
	}
	return errors.Join(w.Flush(), f.Close())
}

// readCandidate reads the anomaly scores of a NAB result directory: for
// data file <category>/<file>.csv, <category>/<file>.csv or NAB's own
// <category>/<detector>_<file>.csv.
func readCandidate(dir string, thr float64, corpus []*series) (candidate, error) {
	c := candidate{name: filepath.Base(dir), thr: thr}
	for _, s := range corpus {
		path, err := resultFile(dir, s.key)
		if err != nil {
			return c, err
		}
		scores, err := readScores(path)
		if err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
		sw, err := newSweep(s.key, s.times, s.windows, scores)
		if err != nil {
			return c, err
		}
		c.sweeps = append(c.sweeps, sw)
	}
	c.pool = newPool(c.sweeps)
	return c, nil
}

func resultFile(dir, key string) (string, error) {
	p := filepath.Join(dir, filepath.FromSlash(key))
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "*_"+filepath.Base(p)))
	if len(m) == 1 {
		return m[0], nil
	}
	return "", fmt.Errorf("%s: %d result files match under %s", key, len(m), dir)
}

func readScores(path string) ([]float64, error) {
	var out []float64
	err := readColumns(path, []string{"anomaly_score"}, func(_ int, c []string) error {
		v, err := strconv.ParseFloat(c[0], 64)
		if err != nil {
			v = math.NaN() // never a detection, as in NAB
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

type namedConfig struct {
	name string
	cfg  detector.Config
}

// gridConfigs expands "key=v1,v2;key=v1" into every combination of the
// values, each applied to base.
func gridConfigs(base detector.Config, spec string) ([]namedConfig, error) {
	if spec == "" {
		return nil, nil
	}
	out := []namedConfig{{name: "", cfg: base}}
	for _, part := range strings.Split(spec, ";") {
		key, vals, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("grid: %q is not key=values", part)
		}
		var next []namedConfig
		for _, c := range out {
			for _, v := range strings.Split(vals, ",") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return nil, fmt.Errorf("grid: %s: %w", key, err)
				}
				n := int(f)
				if key != "threshold" && float64(n) != f {
					return nil, fmt.Errorf("grid: %s: %v is not a whole number", key, v)
				}
				cfg := c.cfg
				switch key {
				case "threshold":
					cfg.Threshold = f
				case "warmup":
					cfg.Warmup = n
				case "resolve_after":
					cfg.ResolveAfter = n
				case "memory":
					cfg.Memory = n
				default:
					return nil, fmt.Errorf("grid: unknown key %q", key)
				}
				if err := cfg.Validate(); err != nil {
					return nil, fmt.Errorf("grid: %w", err)
				}
				next = append(next, namedConfig{name: strings.TrimSpace(c.name + " " + key + "=" + strings.TrimSpace(v)), cfg: cfg})
			}
		}
		out = next
	}
	return out, nil
}
