package sharedcomponent

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
)

// fakeComponent counts the calls the shared wrapper passes through.
type fakeComponent struct {
	starts, shutdowns int
	startErr          error
}

func (f *fakeComponent) Start(context.Context, component.Host) error { f.starts++; return f.startErr }
func (f *fakeComponent) Shutdown(context.Context) error              { f.shutdowns++; return nil }

type config struct{ _ int }

func TestOneComponentPerConfig(t *testing.T) {
	s := NewMap[*config, *fakeComponent]()
	created := 0
	core := &fakeComponent{}
	create := func() (*fakeComponent, error) { created++; return core, nil }

	cfg := &config{}
	logs, err := s.LoadOrStore(cfg, create)
	require.NoError(t, err)
	metrics, err := s.LoadOrStore(cfg, create)
	require.NoError(t, err)
	assert.Same(t, logs, metrics)
	assert.Same(t, core, logs.Unwrap())
	assert.Equal(t, 1, created)

	other, err := s.LoadOrStore(&config{}, func() (*fakeComponent, error) { return &fakeComponent{}, nil })
	require.NoError(t, err)
	assert.NotSame(t, logs, other)

	ctx, host := context.Background(), componenttest.NewNopHost()
	require.NoError(t, logs.Start(ctx, host))
	require.NoError(t, metrics.Start(ctx, host))
	assert.Equal(t, 1, core.starts)
	require.NoError(t, metrics.Shutdown(ctx))
	require.NoError(t, logs.Shutdown(ctx))
	assert.Equal(t, 1, core.shutdowns)

	// Shut down, the entry is gone: a new pipeline gets a new component.
	_, err = s.LoadOrStore(cfg, create)
	require.NoError(t, err)
	assert.Equal(t, 2, created)
}

func TestStartErrorIsSticky(t *testing.T) {
	s := NewMap[*config, *fakeComponent]()
	boom := errors.New("boom")
	r, err := s.LoadOrStore(&config{}, func() (*fakeComponent, error) { return &fakeComponent{startErr: boom}, nil })
	require.NoError(t, err)
	assert.ErrorIs(t, r.Start(context.Background(), componenttest.NewNopHost()), boom)
	assert.ErrorIs(t, r.Start(context.Background(), componenttest.NewNopHost()), boom)
}

func TestCreateError(t *testing.T) {
	s := NewMap[*config, *fakeComponent]()
	boom := errors.New("boom")
	_, err := s.LoadOrStore(&config{}, func() (*fakeComponent, error) { return nil, boom })
	assert.ErrorIs(t, err, boom)
	assert.Zero(t, s.Len(), "a failed creation leaves nothing behind")
}
