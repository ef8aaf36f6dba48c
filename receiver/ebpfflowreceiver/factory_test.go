package ebpfflowreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig()
	require.NoError(t, confmap.Validate(cfg))
	c := cfg.(*Config)
	assert.True(t, c.Flows.Enabled)
	assert.True(t, c.Drops.Enabled)
	assert.Equal(t, []string{"NOT_SPECIFIED", "QUEUE_PURGE"}, c.Drops.IgnoreReasons)
}
