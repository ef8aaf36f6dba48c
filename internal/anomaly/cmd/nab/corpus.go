package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// series is one data file: its key (path relative to the data directory,
// with forward slashes, as NAB's label files name it), its rows and its
// labelled anomaly windows.
type series struct {
	key     string
	times   []time.Time
	raw     []string  // timestamps as written, echoed into result files
	rawVals []string  // values as written
	values  []float64 // NaN where the value does not parse
	windows [][2]time.Time
	kinds   []string // what each window's anomaly is, when known
}

// category is the directory a file sits in: NAB's category.
func (s *series) category() string {
	if i := strings.IndexByte(s.key, '/'); i >= 0 {
		return s.key[:i]
	}
	return "."
}

// loadCorpus reads every .csv under dataDir (sorted by key) and, when
// labelsPath is not empty, attaches to each file its windows from NAB's
// combined_windows.json. Only the windows of files present in dataDir are
// used; a present file the labels do not list is an error, so that a
// misplaced label file cannot silently score a corpus as anomaly-free.
func loadCorpus(dataDir, labelsPath string) ([]*series, error) {
	st, err := os.Stat(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data directory: %s is not a directory", dataDir)
	}
	keys, err := listCSV(dataDir)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no .csv files under %s", dataDir)
	}
	var labels map[string][][2]string
	if labelsPath != "" {
		b, err := os.ReadFile(labelsPath)
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		if err := json.Unmarshal(b, &labels); err != nil {
			return nil, fmt.Errorf("labels %s: %w", labelsPath, err)
		}
	}
	out := make([]*series, 0, len(keys))
	for _, key := range keys {
		s, err := readSeries(filepath.Join(dataDir, filepath.FromSlash(key)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		s.key = key
		if labels != nil {
			ws, ok := labels[key]
			if !ok {
				return nil, fmt.Errorf("%s: not in labels %s", key, labelsPath)
			}
			for _, w := range ws {
				a, err1 := parseTime(w[0])
				b, err2 := parseTime(w[1])
				if err := errors.Join(err1, err2); err != nil {
					return nil, fmt.Errorf("%s: window %v: %w", key, w, err)
				}
				s.windows = append(s.windows, [2]time.Time{a, b})
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// listCSV returns the keys of the .csv files under root, sorted.
func listCSV(root string) ([]string, error) {
	var keys []string
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
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// readColumns reads the CSV file at path, calling row with the named
// columns of every record after the header.
func readColumns(path string, names []string, row func(line int, cols []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	idx := make([]int, len(names))
	for j, name := range names {
		idx[j] = slices.IndexFunc(header, func(h string) bool { return strings.TrimSpace(h) == name })
		if idx[j] < 0 {
			return fmt.Errorf("header has no %s column", name)
		}
	}
	cols := make([]string, len(names))
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for j, i := range idx {
			cols[j] = strings.TrimSpace(rec[i])
		}
		if err := row(line, cols); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
}

func readSeries(path string) (*series, error) {
	s := &series{}
	err := readColumns(path, []string{"timestamp", "value"}, func(_ int, c []string) error {
		t, err := parseTime(c[0])
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(c[1], 64)
		if err != nil {
			v = math.NaN() // counted and skipped by the detector
		}
		s.times = append(s.times, t)
		s.raw = append(s.raw, c[0])
		s.rawVals = append(s.rawVals, c[1])
		s.values = append(s.values, v)
		return nil
	})
	return s, err
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse timestamp %q", s)
}
