package anomalydetectionconnector // import "github.com/ebpfflow/ebpfflow/connector/anomalydetectionconnector"

import (
	"go.opentelemetry.io/collector/confmap"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
)

// Config is the anomaly_detection connector's configuration: the engine's
// settings, shared with the anomaly_detection processor (keys and defaults
// in the processor's README.md; Validate names the offending key).
type Config struct {
	anomaly.Config `mapstructure:",squash"`
}

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() *Config {
	return &Config{Config: anomaly.DefaultConfig()}
}
