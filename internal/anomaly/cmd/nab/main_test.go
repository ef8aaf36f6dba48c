package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ebpfflow/ebpfflow/internal/anomaly/detector"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tsLayout = "2006-01-02 15:04:05"

// writeCorpus writes a NAB-style corpus: data/<key> and
// labels/combined_windows.json, every file a flat series with a level shift
// at row 400 labelled by a window from it.
func writeCorpus(t *testing.T, keys ...string) (data, labels string) {
	root := t.TempDir()
	data = filepath.Join(root, "data")
	t0 := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) string { return t0.Add(time.Duration(i) * 5 * time.Minute).Format(tsLayout) }
	windows := map[string][][2]string{}
	for _, key := range keys {
		var sb strings.Builder
		sb.WriteString("timestamp,value\n")
		for i := 0; i < 500; i++ {
			v := fmt.Sprint(10 + i%3)
			switch {
			case i == 7:
				v = "nan"
			case i >= 400:
				v = "90"
			}
			fmt.Fprintf(&sb, "%s,%s\n", at(i), v)
		}
		require.NoError(t, os.MkdirAll(filepath.Join(data, filepath.Dir(key)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(data, key), []byte(sb.String()), 0o644))
		windows[key] = [][2]string{{at(400) + ".000000", at(424) + ".000000"}}
	}
	b, err := json.Marshal(windows)
	require.NoError(t, err)
	labels = filepath.Join(root, "labels", "combined_windows.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(labels), 0o755))
	require.NoError(t, os.WriteFile(labels, b, 0o644))
	return data, labels
}

func TestRunWritesResultsAndReport(t *testing.T) {
	data, labels := writeCorpus(t, "a/one.csv", "b/two.csv", "c/three.csv")
	out := t.TempDir()
	var rep bytes.Buffer
	require.NoError(t, run(options{data: data, labels: labels, out: out}, &rep))

	b, err := os.ReadFile(filepath.Join(out, "b/two.csv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 501)
	assert.Equal(t, "timestamp,value,anomaly_score", lines[0])
	assert.Equal(t, "2014-04-01 00:35:00,nan,0.000000", lines[8], "unparsable values are scored 0")
	assert.True(t, strings.HasPrefix(lines[401], "2014-04-02 09:20:00,90,"))
	assert.NotEqual(t, "0.000000", strings.Split(lines[401], ",")[2], "the level shift is scored")

	// The report holds out each category in turn and each half.
	r := rep.String()
	t.Log(r)
	for _, want := range []string{"== profile standard", "== profile reward_low_FP_rate", "== profile reward_low_FN_rate",
		"\na ", "\nb ", "\nc ", "mean of categories", "worst category", "first half", "second half", "all files (in-sample)"} {
		assert.Contains(t, r, want)
	}
	// Every file has the same step: detected at once (the first row of the
	// window earns all) wherever it is held out.
	assert.Regexp(t, `\nc +1 +1 +[0-9.]+ +100\.00 `, r)
}

func TestRunErrors(t *testing.T) {
	data, labels := writeCorpus(t, "a/one.csv")
	var w bytes.Buffer
	err := run(options{data: filepath.Join(data, "missing"), labels: labels}, &w)
	assert.ErrorContains(t, err, "data directory")
	err = run(options{data: data, labels: labels + ".missing"}, &w)
	assert.ErrorContains(t, err, "labels")

	// A file the labels do not know is an error, not an anomaly-free file.
	require.NoError(t, os.WriteFile(filepath.Join(data, "a", "other.csv"), []byte("timestamp,value\n2014-04-01 00:00:00,1\n"), 0o644))
	err = run(options{data: data, labels: labels}, &w)
	assert.ErrorContains(t, err, "a/other.csv: not in labels")
}

func TestSplits(t *testing.T) {
	assert.Equal(t, "artificial*", fold("artificialNoAnomaly/x.csv"))
	assert.Equal(t, "artificial*", fold("artificialWithAnomaly/y.csv"))
	assert.Equal(t, "realTweets", fold("realTweets/z.csv"))

	keys := []string{"artificialNoAnomaly/1.csv", "artificialWithAnomaly/2.csv", "realA/3.csv", "realB/4.csv", "realB/5.csv"}
	loo := looSplits(keys)
	require.Len(t, loo, 3)
	assert.Equal(t, "artificial*", loo[0].name)
	assert.Equal(t, "realB", loo[2].name)
	var train []int
	for i, k := range keys {
		if loo[2].train(i, k) {
			train = append(train, i)
		}
	}
	assert.Equal(t, []int{0, 1, 2}, train, "realB is held out")

	h := halfSplits(5)
	assert.False(t, h[0].train(2, ""), "the first half is files 0..2")
	assert.True(t, h[0].train(3, ""))
	assert.True(t, h[1].train(2, ""))
	assert.False(t, h[1].train(3, ""))
}

// Each synthetic family is the same for a seed, another for another seed,
// and every series is a valid NAB file: increasing timestamps, finite
// values in the metric's range, windows on its timestamps, one kind per
// window.
func TestSynthCorpus(t *testing.T) {
	for name, f := range map[string]struct {
		gen   func(perKind int, seed uint64) []*series
		kinds []string
	}{"first": {synthCorpus, synthKinds}, "second": {synthBCorpus, synthBKinds}} {
		t.Run(name, func(t *testing.T) {
			a, b, c := f.gen(3, 1), f.gen(3, 1), f.gen(3, 2)
			require.Len(t, a, 3*len(f.kinds))
			same, windows := true, 0
			for i, s := range a {
				assert.Equal(t, s.values, b[i].values, s.key)
				same = same && slices.Equal(s.values, c[i].values)
				require.Len(t, s.kinds, len(s.windows))
				windows += len(s.windows)
				for j := range s.values {
					require.False(t, math.IsNaN(s.values[j]) || math.IsInf(s.values[j], 0), s.key)
					require.GreaterOrEqual(t, s.values[j], 0.0, s.key)
					if strings.HasPrefix(s.key, "cpu/") {
						require.LessOrEqual(t, s.values[j], 100.0, s.key)
					}
					if j > 0 {
						require.True(t, s.times[j].After(s.times[j-1]), s.key)
					}
				}
				_, err := newSweep(s.key, s.times, s.windows, make([]float64, len(s.times)))
				require.NoError(t, err, "windows lie on the series' timestamps")
			}
			assert.False(t, same, "another seed, another corpus")
			assert.Positive(t, windows)

			// Written as NAB lays a corpus out, it loads back as it was.
			dir := t.TempDir()
			require.NoError(t, writeSynth(dir, a))
			back, err := loadCorpus(filepath.Join(dir, "data"), filepath.Join(dir, "labels", "combined_windows.json"))
			require.NoError(t, err)
			require.Len(t, back, len(a))
			byKey := map[string]*series{}
			for _, s := range a {
				byKey[s.key] = s
			}
			for _, s := range back {
				assert.Equal(t, byKey[s.key].values, s.values, s.key)
				assert.Equal(t, byKey[s.key].windows, s.windows, s.key)
			}
		})
	}
}

func TestGridConfigs(t *testing.T) {
	base := detector.DefaultConfig()
	cfgs, err := gridConfigs(base, "memory=1000,4000;resolve_after=10,60")
	require.NoError(t, err)
	require.Len(t, cfgs, 4)
	assert.Equal(t, "memory=4000 resolve_after=10", cfgs[2].name)
	assert.Equal(t, 4000, cfgs[2].cfg.Memory)
	assert.Equal(t, 10, cfgs[2].cfg.ResolveAfter)
	assert.Equal(t, base.Threshold, cfgs[2].cfg.Threshold)
	_, err = gridConfigs(base, "memory=1")
	assert.ErrorContains(t, err, "memory")
	_, err = gridConfigs(base, "memory=1000.5")
	assert.ErrorContains(t, err, "whole number")
	cfgs, err = gridConfigs(base, "threshold=0.35,0.5")
	require.NoError(t, err)
	require.Len(t, cfgs, 2)
	assert.Equal(t, 0.5, cfgs[1].cfg.Threshold)
	assert.Equal(t, "threshold=0.5", cfgs[1].name)
	_, err = gridConfigs(base, "colour=3")
	assert.ErrorContains(t, err, "unknown key")
}
