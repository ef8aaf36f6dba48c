package anomaly

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{12, "ms", "12 ms"},
		{310, "ms", "310 ms"},
		{0.0512, "ms", "0.0512 ms"},
		{12.34, "ms", "12.3 ms"},
		{1234, "ms", "1.23 s"},
		{0.0123, "s", "12.3 ms"},
		{2.5, "s", "2.5 s"},
		{0, "1/s", "0/s"},
		{4.2, "1/s", "4.2/s"},
		{0, "1", "0%"},
		{1, "1", "100%"},
		{0.025, "1", "2.5%"},
		{0.001234, "1", "0.123%"},
		{999, "By/s", "999 B/s"},
		{1_250_000, "By/s", "1.25 MB/s"},
		{3.2e9, "By", "3.2 GB"},
		{17, "{packet}/s", "17 packet/s"},
		{5, "", "5"},
		{-3, "1/s", "-3/s"},
		{math.Inf(1), "", "+Inf"},
	} {
		assert.Equal(t, tc.want, FormatValue(tc.v, tc.unit), "%v %s", tc.v, tc.unit)
	}
}

func TestSentences(t *testing.T) {
	assert.Equal(t, "p99 latency checkout → payments rose from 12 ms to 310 ms",
		changeSentence("p99 latency checkout → payments", 12, 310, "ms"))
	assert.Equal(t, "drop rate of NETFILTER_DROP on a → b rose from 0/s to 4.2/s",
		changeSentence("drop rate of NETFILTER_DROP on a → b", 0, 4.2, "1/s"))
	assert.Equal(t, "DNS timeouts at resolver 10.0.0.10 rose from 0% to 100%",
		changeSentence("DNS timeouts at resolver 10.0.0.10", 0, 1, "1"))
	assert.Equal(t, "traffic a → b:8080 fell from 1.2 MB/s to 0 B/s",
		changeSentence("traffic a → b:8080", 1.2e6, 0, "By/s"))
	assert.Equal(t, "p99 latency checkout → payments returned to normal after 2m30s: 13 ms (expected 12 ms); it had risen from 12 ms to 310 ms",
		resolvedSentence("p99 latency checkout → payments", 12, 310, 13, 12, "ms", 150*time.Second+300*time.Millisecond, resolvedNormal))
	assert.Equal(t, "traffic a → b stopped reporting 10m0s after the anomaly began; it had fallen from 1 MB/s to 0 B/s",
		resolvedSentence("traffic a → b", 1e6, 0, 0, 0, "By/s", 10*time.Minute, resolvedExpired))
}

// The two sides of a change never print alike: more digits until they
// differ, and as many as a value far below the usual precision needs.
func TestFormatPairDiffers(t *testing.T) {
	assert.Equal(t, "traffic a → b fell from 0.0000003 B/s to 0 B/s",
		changeSentence("traffic a → b", 2.9e-7, 0, "By/s"))
	assert.Equal(t, "traffic a → b rose from 1 kB/s to 1.001 kB/s",
		changeSentence("traffic a → b", 1000, 1001, "By/s"))
	assert.Equal(t, "p99 latency a → b rose from 12.3 ms to 12.4 ms",
		changeSentence("p99 latency a → b", 12.3, 12.4, "ms"))
	assert.Equal(t, "p99 latency a → b returned to normal after 1m0s: 12.01 ms (expected 12 ms); it had risen from 12 ms to 310 ms",
		resolvedSentence("p99 latency a → b", 12, 310, 12.01, 12, "ms", time.Minute, resolvedNormal))
}
