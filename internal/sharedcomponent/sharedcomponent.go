// Package sharedcomponent gives every pipeline of one component ID the same
// instance. The collector creates a component once per pipeline signal (the
// receiver's logs, metrics and traces; each processor pipeline; each pair of
// a connector's signals), all from the same *Config, so the config pointer
// identifies the component: its probes attach once, its engine judges all of
// its input together. contrib's internal/sharedcomponent does the same but
// cannot be imported from another module.
package sharedcomponent // import "github.com/ebpfflow/ebpfflow/internal/sharedcomponent"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// Map holds one shared component per key.
type Map[K comparable, V component.Component] struct {
	mu sync.Mutex
	m  map[K]*Component[V]
}

// NewMap returns an empty map.
func NewMap[K comparable, V component.Component]() *Map[K, V] {
	return &Map[K, V]{m: make(map[K]*Component[V])}
}

// LoadOrStore returns the component of key, creating it with create on first
// use. A failed creation leaves nothing behind.
func (m *Map[K, V]) LoadOrStore(key K, create func() (V, error)) (*Component[V], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.m[key]; ok {
		return c, nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	c := &Component[V]{component: v, remove: func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.m, key)
	}}
	m.m[key] = c
	return c, nil
}

// Len returns the number of components held.
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// Component starts its component once and shuts it down once, whichever
// pipeline comes first: the collector starts and stops a component ID's
// pipelines together. Once shut down it is removed from its Map, so a
// pipeline built afterwards (a reload) gets a new component.
type Component[V component.Component] struct {
	component V
	remove    func()

	startOnce, shutdownOnce sync.Once
	startErr, shutdownErr   error
}

// Unwrap returns the shared component.
func (c *Component[V]) Unwrap() V { return c.component }

// Start starts the component on the first call and returns that call's
// error on every call.
func (c *Component[V]) Start(ctx context.Context, host component.Host) error {
	c.startOnce.Do(func() { c.startErr = c.component.Start(ctx, host) })
	return c.startErr
}

// Shutdown shuts the component down on the first call (started or not) and
// returns that call's error on every call.
func (c *Component[V]) Shutdown(ctx context.Context) error {
	c.shutdownOnce.Do(func() {
		c.remove()
		c.shutdownErr = c.component.Shutdown(ctx)
	})
	return c.shutdownErr
}
