// Command nab runs the anomaly detector over a directory of NAB-style CSV
// files (timestamp,value) and writes one NAB result CSV per input
// (timestamp,value,anomaly_score) under the same relative path.
//
// Each file is one series, fed point by point in order through the same
// detector core and default configuration the anomaly_detection processor
// uses: no look-ahead, no per-file settings.
//
//	go run ./internal/anomaly/cmd/nab -data DIR -out DIR [-half 1|2]
//
// -half selects the first or second half of the files in path order, to
// check that a change holds on data it was not looked at with.
package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ebpfflow/ebpfflow/internal/anomaly/detector"
)

func main() {
	data := flag.String("data", "", "input directory laid out like NAB's data/ (required)")
	out := flag.String("out", "", "output directory for result CSVs (required)")
	half := flag.Int("half", 0, "0: all files; 1 or 2: only that half of the files in path order")
	flag.BoolVar(&explain, "explain", false, "also write each point's expected value, deviation and basis")
	flag.Parse()
	if *data == "" || *out == "" || *half < 0 || *half > 2 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*data, *out, *half); err != nil {
		fmt.Fprintln(os.Stderr, "nab:", err)
		os.Exit(1)
	}
}

// explain adds the detector's reading of each point to the output, for
// looking into what a detection (or a miss) was based on.
var explain bool

func run(dataDir, outDir string, half int) error {
	files, err := listCSV(dataDir)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no .csv files under %s", dataDir)
	}
	files = selectHalf(files, half)
	var stats detector.Stats
	start := time.Now()
	for _, rel := range files {
		s, err := runFile(filepath.Join(dataDir, rel), filepath.Join(outDir, rel))
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		stats.Points += s.Points
		stats.Skipped += s.Skipped
		stats.Anomalies += s.Anomalies
	}
	fmt.Fprintf(os.Stderr, "nab: %d files, %d points (%d skipped), %d detections, %v\n",
		len(files), stats.Points, stats.Skipped, stats.Anomalies, time.Since(start).Round(time.Millisecond))
	return nil
}

func listCSV(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".csv") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files = append(files, rel)
		return nil
	})
	sort.Strings(files)
	return files, err
}

func selectHalf(files []string, half int) []string {
	mid := (len(files) + 1) / 2
	switch half {
	case 1:
		return files[:mid]
	case 2:
		return files[mid:]
	}
	return files
}

// runFile feeds one series through a fresh detector and writes its scores.
func runFile(in, out string) (detector.Stats, error) {
	f, err := os.Open(in)
	if err != nil {
		return detector.Stats{}, err
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return detector.Stats{}, err
	}
	o, err := os.Create(out)
	if err != nil {
		return detector.Stats{}, err
	}
	w := bufio.NewWriter(o)
	d := detector.New(detector.DefaultConfig())
	if err := score(csv.NewReader(bufio.NewReader(f)), w, d); err != nil {
		o.Close()
		return detector.Stats{}, err
	}
	if err := w.Flush(); err != nil {
		o.Close()
		return detector.Stats{}, err
	}
	return d.Stats(), o.Close()
}

func score(r *csv.Reader, w io.Writer, d *detector.Detector) error {
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	ti, vi := -1, -1
	for i, h := range header {
		switch strings.TrimSpace(h) {
		case "timestamp":
			ti = i
		case "value":
			vi = i
		}
	}
	if ti < 0 || vi < 0 {
		return errors.New("header needs timestamp and value columns")
	}
	out := "timestamp,value,anomaly_score\n"
	if explain {
		out = "timestamp,value,anomaly_score,expected,deviation,basis\n"
	}
	if _, err := io.WriteString(w, out); err != nil {
		return err
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		ts, vs := strings.TrimSpace(rec[ti]), strings.TrimSpace(rec[vi])
		t, err := parseTime(ts)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil {
			v = math.NaN() // counted and skipped by the detector
		}
		res := d.Observe(t, v)
		score := strconv.FormatFloat(res.Score, 'f', 6, 64)
		if explain {
			_, err = fmt.Fprintf(w, "%s,%s,%s,%g,%.2f,%s\n", ts, vs, score, res.Expected, res.Deviation, res.Basis)
		} else {
			_, err = fmt.Fprintf(w, "%s,%s,%s\n", ts, vs, score)
		}
		if err != nil {
			return err
		}
	}
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse timestamp %q", s)
}
