package ebpfflowreceiver // import "github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
)

// receiverCore is what the platform file provides: one eBPF engine feeding
// the logs, metrics and traces consumers of one receiver ID.
type receiverCore interface {
	component.Component
	setLogs(consumer.Logs)
	setMetrics(consumer.Metrics)
	setTraces(consumer.Traces)
}

// sharedReceivers gives the logs, metrics and traces pipelines of one receiver
// the same core: the probes attach once, however many pipelines use them.
// The collector creates both from the same *Config, so the config pointer
// identifies the receiver (as contrib's internal/sharedcomponent does).
type sharedReceivers struct {
	mu sync.Mutex
	m  map[*Config]*sharedReceiver
}

func newSharedReceivers() *sharedReceivers {
	return &sharedReceivers{m: make(map[*Config]*sharedReceiver)}
}

// getOrCreate returns the receiver for cfg, creating its core on first use.
func (s *sharedReceivers) getOrCreate(cfg *Config, create func() (receiverCore, error)) (*sharedReceiver, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[cfg]; ok {
		return r, nil
	}
	core, err := create()
	if err != nil {
		return nil, err
	}
	r := &sharedReceiver{receiverCore: core, remove: func() { s.delete(cfg) }}
	s.m[cfg] = r
	return r, nil
}

func (s *sharedReceivers) delete(cfg *Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, cfg)
}

// sharedReceiver starts its core once and shuts it down once, whichever
// pipeline comes first; the collector starts and stops all receivers together.
type sharedReceiver struct {
	receiverCore
	remove func()

	startOnce, shutdownOnce sync.Once
	startErr, shutdownErr   error
}

func (r *sharedReceiver) Start(ctx context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.receiverCore.Start(ctx, host) })
	return r.startErr
}

func (r *sharedReceiver) Shutdown(ctx context.Context) error {
	r.shutdownOnce.Do(func() {
		r.remove()
		r.shutdownErr = r.receiverCore.Shutdown(ctx)
	})
	return r.shutdownErr
}
