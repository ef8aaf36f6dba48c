package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunWritesOneResultPerInput(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	t0 := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	for _, rel := range []string{"a/one.csv", "b/two.csv"} {
		var sb strings.Builder
		sb.WriteString("timestamp,value\n")
		for i := 0; i < 500; i++ {
			v := "10"
			switch {
			case i == 7:
				v = "nan"
			case i >= 400:
				v = "90"
			}
			fmt.Fprintf(&sb, "%s,%s\n", t0.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05"), v)
		}
		require.NoError(t, os.MkdirAll(filepath.Join(data, filepath.Dir(rel)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(data, rel), []byte(sb.String()), 0o644))
	}
	require.NoError(t, run(data, out, 0))

	b, err := os.ReadFile(filepath.Join(out, "b/two.csv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 501)
	assert.Equal(t, "timestamp,value,anomaly_score", lines[0])
	assert.Equal(t, "2014-04-01 00:35:00,nan,0.000000", lines[8], "unparsable values are scored 0")
	assert.True(t, strings.HasPrefix(lines[401], "2014-04-02 09:20:00,90,"))
	assert.NotEqual(t, "0.000000", strings.Split(lines[401], ",")[2], "the level shift is scored")

	// Halves split the files in path order.
	half := t.TempDir()
	require.NoError(t, run(data, half, 2))
	assert.NoFileExists(t, filepath.Join(half, "a/one.csv"))
	assert.FileExists(t, filepath.Join(half, "b/two.csv"))
}
