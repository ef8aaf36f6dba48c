package ebpfflowreceiver

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig()
	require.NoError(t, confmap.Validate(cfg))
	c := cfg.(*Config)
	assert.True(t, c.Flows.Enabled)
	assert.True(t, c.Drops.Enabled)
	assert.Equal(t, []string{"NOT_SPECIFIED", "QUEUE_PURGE"}, c.Drops.IgnoreReasons)
}

// fakeCore counts the calls the shared wrapper passes through.
type fakeCore struct {
	starts, shutdowns int
	startErr          error
	logs              consumer.Logs
	metrics           consumer.Metrics
	traces            consumer.Traces
}

func (f *fakeCore) Start(context.Context, component.Host) error { f.starts++; return f.startErr }
func (f *fakeCore) Shutdown(context.Context) error              { f.shutdowns++; return nil }
func (f *fakeCore) setLogs(l consumer.Logs)                     { f.logs = l }
func (f *fakeCore) setMetrics(m consumer.Metrics)               { f.metrics = m }
func (f *fakeCore) setTraces(tr consumer.Traces)                { f.traces = tr }

func TestSharedReceiverOneCorePerConfig(t *testing.T) {
	s := newSharedReceivers()
	created := 0
	core := &fakeCore{}
	create := func() (receiverCore, error) { created++; return core, nil }

	cfg := createDefaultConfig()
	logs, err := s.getOrCreate(cfg, create)
	require.NoError(t, err)
	metrics, err := s.getOrCreate(cfg, create)
	require.NoError(t, err)
	assert.Same(t, logs, metrics)
	assert.Equal(t, 1, created)

	other, err := s.getOrCreate(createDefaultConfig(), func() (receiverCore, error) { return &fakeCore{}, nil })
	require.NoError(t, err)
	assert.NotSame(t, logs, other)

	ctx, host := context.Background(), componenttest.NewNopHost()
	require.NoError(t, logs.Start(ctx, host))
	require.NoError(t, metrics.Start(ctx, host))
	assert.Equal(t, 1, core.starts)
	require.NoError(t, metrics.Shutdown(ctx))
	require.NoError(t, logs.Shutdown(ctx))
	assert.Equal(t, 1, core.shutdowns)

	// Shut down, the entry is gone: a new pipeline gets a new core.
	_, err = s.getOrCreate(cfg, create)
	require.NoError(t, err)
	assert.Equal(t, 2, created)
}

func TestSharedReceiverStartErrorIsSticky(t *testing.T) {
	s := newSharedReceivers()
	boom := errors.New("boom")
	r, err := s.getOrCreate(createDefaultConfig(), func() (receiverCore, error) { return &fakeCore{startErr: boom}, nil })
	require.NoError(t, err)
	assert.ErrorIs(t, r.Start(context.Background(), componenttest.NewNopHost()), boom)
	assert.ErrorIs(t, r.Start(context.Background(), componenttest.NewNopHost()), boom)
}

func TestSharedReceiverCreateError(t *testing.T) {
	s := newSharedReceivers()
	cfg := createDefaultConfig()
	boom := errors.New("boom")
	_, err := s.getOrCreate(cfg, func() (receiverCore, error) { return nil, boom })
	assert.ErrorIs(t, err, boom)
	assert.Empty(t, s.m, "a failed creation leaves nothing behind")
}
