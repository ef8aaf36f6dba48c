package clusterview

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// pruneInterval is how often released addresses past the retention are
// forgotten.
const pruneInterval = 30 * time.Second

// retryBackoff paces the retries of a failed list or watch. client-go's
// default grows to 30 s (up to 60 s with its jitter), and a view recovering
// from an outage goes through more than one retry (the watch, then the list
// it falls back to); measured after a 60 s outage that left pods unnamed for
// over 40 s. A 5 s cap with half jitter (at most 7.5 s a retry) keeps a
// fleet of agents from retrying in step, at one cheap request per resource
// and agent every few seconds while the server is down.
var retryBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 10, Cap: 5 * time.Second}

// source is one watched resource: how to list and watch it, and how its
// objects change the view.
type source struct {
	index    int // in Resources
	example  runtime.Object
	list     func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error)
	watch    func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
	key      func(obj any) (string, bool)
	upsert   func(obj any, now int64, batch uint64) // view locked
	remove   func(key string, now int64)            // view locked
	keys     func() []string                        // view locked
	selector string                                 // field selector, for the log
}

func (v *View) sources() []*source {
	c := v.cfg.Client
	// Finished pods hold no address; the API server leaves them out, and a
	// pod that finishes leaves the watch like a deleted one.
	podSel := fields.AndSelectors(
		fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
		fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)),
	).String()
	return []*source{
		{
			index: 0, example: &corev1.Pod{}, selector: podSel,
			list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.FieldSelector = podSel
				return c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, o)
			},
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.FieldSelector = podSel
				return c.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, o)
			},
			key: func(obj any) (string, bool) {
				p, ok := obj.(*corev1.Pod)
				if !ok {
					return "", false
				}
				return string(p.UID), true
			},
			upsert: func(obj any, now int64, batch uint64) { v.upsertPodLocked(obj.(*corev1.Pod), now, batch) },
			remove: func(key string, now int64) { v.deletePodLocked(key, now) },
			keys:   func() []string { return mapKeys(v.pods) },
		},
		{
			index: 1, example: &corev1.Service{},
			list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.CoreV1().Services(metav1.NamespaceAll).List(ctx, o)
			},
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.CoreV1().Services(metav1.NamespaceAll).Watch(ctx, o)
			},
			key: func(obj any) (string, bool) {
				s, ok := obj.(*corev1.Service)
				if !ok {
					return "", false
				}
				return s.Namespace + "/" + s.Name, true
			},
			upsert: func(obj any, _ int64, _ uint64) { v.upsertServiceLocked(obj.(*corev1.Service)) },
			remove: func(key string, _ int64) { v.deleteServiceLocked(key) },
			keys:   func() []string { return mapKeys(v.services) },
		},
		{
			index: 2, example: &discoveryv1.EndpointSlice{},
			list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).List(ctx, o)
			},
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).Watch(ctx, o)
			},
			key: func(obj any) (string, bool) {
				s, ok := obj.(*discoveryv1.EndpointSlice)
				if !ok {
					return "", false
				}
				return s.Namespace + "/" + s.Name, true
			},
			upsert: func(obj any, _ int64, _ uint64) { v.upsertSliceLocked(obj.(*discoveryv1.EndpointSlice)) },
			remove: func(key string, _ int64) { v.deleteSliceLocked(key) },
			// Slices with nothing worth indexing are not kept, so they are
			// not among the keys either: removing one is a no-op.
			keys: func() []string { return mapKeys(v.slices) },
		},
		{
			index: 3, example: &corev1.Node{},
			list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.CoreV1().Nodes().List(ctx, o)
			},
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.CoreV1().Nodes().Watch(ctx, o)
			},
			key: func(obj any) (string, bool) {
				n, ok := obj.(*corev1.Node)
				if !ok {
					return "", false
				}
				return n.Name, true
			},
			upsert: func(obj any, _ int64, _ uint64) { v.upsertNodeLocked(obj.(*corev1.Node)) },
			remove: func(key string, _ int64) { v.deleteNodeLocked(key) },
			keys:   func() []string { return mapKeys(v.nodes) },
		},
	}
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// run starts one reflector per resource and the pruner; v.done closes when
// all have stopped.
func (v *View) run(ctx context.Context) {
	// client-go reports every failed list or watch through klog, once per
	// retry; the view says it once through its own logger instead.
	quiet := logr.Discard()
	ctx = klog.NewContext(ctx, quiet)
	var wg sync.WaitGroup
	for _, src := range v.sources() {
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				obj, err := src.list(ctx, o)
				v.watch.report(ctx, src.index, "list", err)
				if err == nil {
					stripList(obj)
				}
				return obj, err
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				w, err := src.watch(ctx, o)
				v.watch.report(ctx, src.index, "watch", err)
				if err != nil {
					return nil, err
				}
				return stripWatch(w, func() { v.watch.stale(src.index) }), nil
			},
		}
		backoff := retryBackoff
		r := cache.NewReflectorWithOptions(lw, src.example, &store{v: v, src: src}, cache.ReflectorOptions{
			Name:    "ebpfflow-" + Resources[src.index],
			Logger:  &quiet,
			Backoff: &backoff,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.RunWithContext(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(pruneInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				v.prune()
			}
		}
	}()
	go func() {
		wg.Wait()
		close(v.done)
	}()
}

// store is what a reflector writes into: the view itself, through the
// source's functions. Objects are reduced as they arrive and not kept.
type store struct {
	v   *View
	src *source
}

func (s *store) Add(obj any) error    { return s.apply(obj) }
func (s *store) Update(obj any) error { return s.apply(obj) }
func (s *store) Resync() error        { return nil }

func (s *store) apply(obj any) error {
	if _, ok := s.src.key(obj); !ok {
		return fmt.Errorf("unexpected object %T", obj)
	}
	now := s.v.now().UnixNano()
	s.v.mu.Lock()
	s.src.upsert(obj, now, 0)
	s.v.mu.Unlock()
	return nil
}

func (s *store) Delete(obj any) error {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	key, ok := s.src.key(obj)
	if !ok {
		return fmt.Errorf("unexpected object %T", obj)
	}
	now := s.v.now().UnixNano()
	s.v.mu.Lock()
	s.src.remove(key, now)
	s.v.mu.Unlock()
	return nil
}

// Replace makes the view hold exactly list: what is not in it went away
// while the watch was down.
func (s *store) Replace(list []any, _ string) error {
	now := s.v.now().UnixNano()
	present := make(map[string]struct{}, len(list))
	for _, obj := range list {
		if k, ok := s.src.key(obj); ok {
			present[k] = struct{}{}
		}
	}
	s.v.mu.Lock()
	defer s.v.mu.Unlock()
	s.v.batch++
	for _, k := range s.src.keys() {
		if _, ok := present[k]; !ok {
			s.src.remove(k, now)
		}
	}
	for _, obj := range list {
		if _, ok := s.src.key(obj); ok {
			s.src.upsert(obj, now, s.v.batch)
		}
	}
	return nil
}

// watchState tracks whether each resource's last list or watch worked and
// says so in the log once per change, never once per retry.
type watchState struct {
	log *zap.Logger

	mu          sync.Mutex
	ok          [len(Resources)]bool
	denied      [len(Resources)]bool
	unreachable bool // logged that the API server cannot be reached
	rejected    bool // logged that the credentials are rejected
}

func newWatchState(log *zap.Logger) *watchState { return &watchState{log: log} }

func (w *watchState) up() [len(Resources)]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok
}

func (w *watchState) report(ctx context.Context, i int, verb string, err error) {
	if err != nil && ctx.Err() != nil {
		return // shutting down
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	res := Resources[i]
	if err == nil {
		w.ok[i] = true
		if w.denied[i] {
			w.denied[i] = false
			w.log.Info("kubernetes API allows the view's watch again", zap.String("resource", res))
		}
		if (w.unreachable || w.rejected) && w.allOKLocked() {
			w.unreachable, w.rejected = false, false
			w.log.Info("kubernetes API reachable again: peer identity resumes")
		}
		return
	}
	w.ok[i] = false
	switch {
	case apierrors.IsForbidden(err):
		if !w.denied[i] {
			w.denied[i] = true
			w.log.Warn(denialMessage(verb, res, err), zap.String("verb", verb), zap.String("resource", res), zap.Error(err))
		}
	case apierrors.IsUnauthorized(err):
		if !w.rejected {
			w.rejected = true
			w.log.Warn("kubernetes API rejects the collector's credentials; flows keep flowing without peer names until it accepts them",
				zap.String("verb", verb), zap.String("resource", res), zap.Error(err))
		}
	default:
		if !w.unreachable {
			w.unreachable = true
			w.log.Warn("kubernetes API unreachable; flows keep flowing, peers named from the view as last seen (none before the first list), retrying",
				zap.String("verb", verb), zap.String("resource", res), zap.Error(err))
		}
	}
}

// stale marks a resource's watch as ended by the server: not working until
// the next list or watch succeeds (nothing to log: the reflector relists).
func (w *watchState) stale(i int) {
	w.mu.Lock()
	w.ok[i] = false
	w.mu.Unlock()
}

// allOKLocked: every resource that is not denied works.
func (w *watchState) allOKLocked() bool {
	for i := range w.ok {
		if !w.ok[i] && !w.denied[i] {
			return false
		}
	}
	return true
}

// denialMessage names what RBAC must grant.
func denialMessage(verb, resource string, err error) string {
	group := `""`
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		if d := se.Status().Details; d != nil && d.Group != "" {
			group = d.Group
		}
	}
	if resource == ResourceEndpointSlices {
		group = "discovery.k8s.io"
	}
	return fmt.Sprintf("kubernetes RBAC denies %s on %s: grant the collector's ServiceAccount get, list and watch on %s (apiGroup %s); until then no address is named from %s",
		verb, resource, resource, group, resource)
}
