package anomalydetectionprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/ebpfflow/ebpfflow/processor/anomalydetectionprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig()
	full.Window = 5 * time.Second
	full.MaxSeries = 50000
	full.SeriesTTL = 30 * time.Minute
	full.MinCount = 50
	full.MinChange = 0.5
	full.ConfirmWindows = 3
	full.QuietPeriod = time.Hour
	full.MaxAlertsPerMinute = 5
	full.ErrorScore = 0.9
	full.ExcludeAttributes = []string{"k8s.pod.uid", "process.pid"}
	full.Detector.Threshold = 0.5
	full.Detector.Warmup = 60
	full.Detector.ResolveAfter = 12
	full.Detector.Memory = 1000

	tests := []struct {
		name      string
		want      *Config
		errSubstr []string
		unmarshal bool
	}{
		{name: "", want: createDefaultConfig()},
		{name: "full", want: full},
		{name: "window_too_short", errSubstr: []string{"window: must be at least 100ms, got 10ms"}},
		{name: "ttl_below_window", errSubstr: []string{"series_ttl: must be at least window (1m0s), got 30s"}},
		{name: "bad_detector", errSubstr: []string{"detector::threshold: must be in (0,1], got 1.5"}},
		{name: "zero_rate_limit", errSubstr: []string{"max_alerts_per_minute: must be >= 1, got 0"}},
		{name: "unknown_key", errSubstr: []string{"windw"}, unmarshal: true},
	}
	for _, tt := range tests {
		id := component.NewIDWithName(metadata.Type, tt.name)
		t.Run(id.String(), func(t *testing.T) {
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			cfg := NewFactory().CreateDefaultConfig()
			err = sub.Unmarshal(cfg)
			if tt.unmarshal {
				require.Error(t, err)
				for _, s := range tt.errSubstr {
					assert.ErrorContains(t, err, s)
				}
				return
			}
			require.NoError(t, err)
			err = confmap.Validate(cfg)
			if tt.errSubstr == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, cfg)
				return
			}
			require.Error(t, err)
			for _, s := range tt.errSubstr {
				assert.ErrorContains(t, err, s)
			}
		})
	}
}
