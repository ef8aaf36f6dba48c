package anomaly

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ebpfflow/ebpfflow/internal/anomaly/detector"
	"github.com/ebpfflow/ebpfflow/internal/semconv"
)

// Config is the configuration of the anomaly_detection processor and
// connector (both embed it). Keys are documented in the components' README.
type Config struct {
	// Window is the aggregation window: every series gets at most one point
	// per window (a rate, a ratio, a percentile or a mean over it), and that
	// point is what the detector scores.
	Window time.Duration `mapstructure:"window"`
	// MaxSeries bounds the series table. A new series beyond it is refused
	// and counted (anomaly_detection_series_evicted{reason="limit"}).
	MaxSeries int `mapstructure:"max_series"`
	// SeriesTTL forgets a series that has had no data for this long
	// (counted, reason="ttl").
	SeriesTTL time.Duration `mapstructure:"series_ttl"`
	// MinCount gates on volume. A ratio's window whose denominator (flows'
	// packets, DNS queries, HTTP requests) is below it is not scored, so
	// three requests never page anyone; and a rise of a count — drops, or a
	// ratio's numerator (timeouts, 5xx, retransmissions) — is alerted only
	// with at least this many events in the window.
	MinCount int `mapstructure:"min_count"`
	// MinChange is the smallest relative change worth an alert:
	// |observed - expected| must be at least min_change * |expected|.
	MinChange float64 `mapstructure:"min_change"`
	// ConfirmWindows is how many consecutive windows, the first included,
	// an anomaly must last before it is alerted (the value staying at least
	// three quarters of the way from the expected value to the anomalous
	// one; for counts, whose faults come in bursts, the windows between
	// bursts are skipped until the detector is calm again). 1 alerts on the first window. With thousands of series, single-window noise
	// excursions rare enough to score are a daily event; a second window
	// filters almost all of them for one window of delay.
	ConfirmWindows int `mapstructure:"confirm_windows"`
	// QuietPeriod: after an alert, further alerts of the same series and of
	// the same edge (grouping) are suppressed for this long (counted).
	QuietPeriod time.Duration `mapstructure:"quiet_period"`
	// MaxAlertsPerMinute is a global rate limit on firing alerts (token
	// bucket, burst of the same size). Suppressed alerts are counted.
	MaxAlertsPerMinute int `mapstructure:"max_alerts_per_minute"`
	// ErrorScore is the score from which an alert has severity ERROR
	// instead of WARN.
	ErrorScore float64 `mapstructure:"error_score"`
	// ExcludeAttributes are left out of the identity of metric series: they
	// change with every restart or rollout (pod uids, container ids, pids)
	// and would turn one series into many. Counters are still converted to
	// rates per original stream, then summed.
	ExcludeAttributes []string `mapstructure:"exclude_attributes"`
	// Detector holds the per-series detector's settings.
	Detector DetectorConfig `mapstructure:"detector"`

	_ struct{}
}

// DetectorConfig mirrors detector.Config with configuration keys.
type DetectorConfig struct {
	// Threshold is the score in (0,1] from which a point is anomalous; a
	// score s means a probability of about 10^(-10*s).
	Threshold float64 `mapstructure:"threshold"`
	// Warmup is the number of windows a series must have before it is
	// scored (100 windows of 10 s: about 17 minutes).
	Warmup int `mapstructure:"warmup"`
	// ResolveAfter is the number of calm windows after which an anomaly
	// resolves.
	ResolveAfter int `mapstructure:"resolve_after"`
	// Memory is the effective number of recent windows against which the
	// rarity of a deviation is judged.
	Memory int `mapstructure:"memory"`

	_ struct{}
}

// DefaultExcludeAttributes are the volatile attributes left out of metric
// series identities by default.
var DefaultExcludeAttributes = []string{
	semconv.AttrContainerID, semconv.AttrPodUID, semconv.AttrPodName, semconv.AttrPodIP,
	semconv.AttrReplicaSetUID, semconv.AttrReplicaSetName, semconv.AttrContainerRestarts,
	semconv.AttrProcessPID, semconv.AttrProcessParentPID, semconv.AttrServiceInstanceID,
	semconv.AttrCgroupPath,
	semconv.AttrSrcPort, semconv.AttrClientPort, semconv.AttrNetworkLocalPort, semconv.AttrNetworkPeerPort,
	semconv.OnSide(semconv.SideSource, semconv.AttrPodUID), semconv.OnSide(semconv.SideDestination, semconv.AttrPodUID),
}

// DefaultConfig returns the defaults: 10 s windows, 10k series forgotten
// after 10 minutes without data, ratios need 20 events per window, one
// alert per series and per edge per 10 minutes, at most 30 alerts a minute.
func DefaultConfig() Config {
	d := detector.DefaultConfig()
	return Config{
		Window:             10 * time.Second,
		MaxSeries:          10000,
		SeriesTTL:          10 * time.Minute,
		MinCount:           20,
		MinChange:          0.2,
		ConfirmWindows:     2,
		QuietPeriod:        10 * time.Minute,
		MaxAlertsPerMinute: 30,
		ErrorScore:         0.8,
		ExcludeAttributes:  append([]string(nil), DefaultExcludeAttributes...),
		Detector: DetectorConfig{
			Threshold:    d.Threshold,
			Warmup:       d.Warmup,
			ResolveAfter: d.ResolveAfter,
			Memory:       d.Memory,
		},
	}
}

const (
	minWindow    = 100 * time.Millisecond
	maxMaxSeries = 1 << 22 // ~30 GiB of state at 8 KB: beyond any sane node
)

// Validate checks the configuration; each error names its key.
func (c *Config) Validate() error {
	var errs []error
	if c.Window < minWindow {
		errs = append(errs, fmt.Errorf("window: must be at least %v, got %v", minWindow, c.Window))
	}
	if c.MaxSeries < 1 || c.MaxSeries > maxMaxSeries {
		errs = append(errs, fmt.Errorf("max_series: must be between 1 and %d, got %d", maxMaxSeries, c.MaxSeries))
	}
	if c.SeriesTTL < c.Window {
		errs = append(errs, fmt.Errorf("series_ttl: must be at least window (%v), got %v", c.Window, c.SeriesTTL))
	}
	if c.MinCount < 0 {
		errs = append(errs, fmt.Errorf("min_count: must be >= 0, got %d", c.MinCount))
	}
	if !(c.MinChange >= 0) {
		errs = append(errs, fmt.Errorf("min_change: must be >= 0, got %v", c.MinChange))
	}
	if c.ConfirmWindows < 1 {
		errs = append(errs, fmt.Errorf("confirm_windows: must be >= 1, got %d", c.ConfirmWindows))
	}
	if c.QuietPeriod < 0 {
		errs = append(errs, fmt.Errorf("quiet_period: must be >= 0, got %v", c.QuietPeriod))
	}
	if c.MaxAlertsPerMinute < 1 {
		errs = append(errs, fmt.Errorf("max_alerts_per_minute: must be >= 1, got %d", c.MaxAlertsPerMinute))
	}
	if !(c.ErrorScore > 0 && c.ErrorScore <= 1) {
		errs = append(errs, fmt.Errorf("error_score: must be in (0,1], got %v", c.ErrorScore))
	}
	for i, a := range c.ExcludeAttributes {
		if strings.TrimSpace(a) == "" {
			errs = append(errs, fmt.Errorf("exclude_attributes[%d]: empty attribute name", i))
		}
	}
	if err := c.Detector.toDetector().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("detector::%w", err))
	}
	return errors.Join(errs...)
}

func (d DetectorConfig) toDetector() detector.Config {
	return detector.Config{Threshold: d.Threshold, Warmup: d.Warmup, ResolveAfter: d.ResolveAfter, Memory: d.Memory}
}
