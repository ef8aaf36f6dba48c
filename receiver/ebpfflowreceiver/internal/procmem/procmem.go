// Package procmem keeps the collector process's resident memory near what an
// agent uses at run time: a garbage-collector target that follows the live
// heap, and the pages of the executable that only start-up touched given
// back to the kernel.
//
// Measured with 10k active flows (make bench-load): the heap holds 27–29 MB
// live during a flush and ~21 MB between flushes, so the default GOGC=100
// would let it reach ~58 MB where the 40 MiB target keeps it at 40–44 MB.
// Under HTTP load the heap holds less and GC is a fifth of the collector's
// CPU: there GOGC=100 saves ~17 % of it. Of the ~50 MB of the 87 MB binary
// the kernel maps in by the end of start-up (initialisation of every
// component the distribution carries, config parsing, fault-around of 64 KB
// around each touched page), about 16 MB are touched again once the
// pipelines run.
package procmem

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

const (
	// HeapTarget is about the heap GOGC=50 reaches at a flush of 10k
	// flows (27–29 MB live since the log records go out in batches and
	// kernel symbols are no longer held; it was 45 MiB for ~30–40 MB):
	// below it the GC may let the heap grow up to twice the live heap,
	// not beyond.
	HeapTarget = 40 << 20
	// MinGCPercent and MaxGCPercent bound the GOGC the tuner sets: at
	// least the old default's headroom however large the live heap (a GC
	// cycle per third of the live heap allocated at worst, never the
	// back-to-back cycles of a memory limit the live heap reaches), at
	// most the runtime's default.
	MinGCPercent = 50
	MaxGCPercent = 100
)

// TuneGC starts the tuner with HeapTarget unless GOGC is set in the
// environment (an operator's choice wins; the tuner is then nil). A
// GOMEMLIMIT from the environment stays in effect either way: the runtime
// collects at the lower of the two goals, so the limit remains a ceiling
// (the Helm chart sets one under the pod's memory limit). It returns what
// is in effect, for the start-up line.
func TuneGC() (*Tuner, string) {
	var t *Tuner
	gc := fmt.Sprintf("GOGC %d-%d by live heap, heap target %d MiB", MinGCPercent, MaxGCPercent, HeapTarget>>20)
	if v, ok := os.LookupEnv("GOGC"); ok {
		gc = "GOGC=" + v + " from the environment"
	} else {
		t = StartTuner(HeapTarget)
	}
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		gc += ", GOMEMLIMIT=" + v + " from the environment"
	}
	return t, gc
}

// Tuner sets GOGC after every GC cycle so that the next heap goal is
// min(2×live, max(target, 1.5×live)): GOGC=100 while the live heap is at
// most half the target, GOGC=50 from two thirds of it on.
type Tuner struct {
	target  uint64
	stopped atomic.Bool
	sample  []metrics.Sample
	last    int
}

// sentinel is collected in every GC cycle and rearmed by its finalizer,
// which thus runs once per cycle. It holds a pointer, so it is never
// batched with other objects by the tiny allocator (whose finalizers may
// not run).
type sentinel struct{ t *Tuner }

// StartTuner sets GOGC for the current live heap and after every GC cycle.
func StartTuner(target uint64) *Tuner {
	t := &Tuner{target: target, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	runtime.SetFinalizer(&sentinel{t}, afterGC)
	return t
}

func afterGC(s *sentinel) {
	if s.t.stopped.Load() {
		return
	}
	s.t.adjust()
	runtime.SetFinalizer(s, afterGC)
}

// Stop leaves GOGC as it is and stops following the live heap.
func (t *Tuner) Stop() { t.stopped.Store(true) }

func (t *Tuner) adjust() {
	metrics.Read(t.sample)
	live := t.sample[0].Value.Uint64()
	if p := GCPercentFor(live, t.target); p != t.last {
		debug.SetGCPercent(p)
		t.last = p
	}
}

// GCPercentFor is the GOGC whose heap goal for live bytes is target,
// bounded to MinGCPercent..MaxGCPercent.
func GCPercentFor(live, target uint64) int {
	if live == 0 || target >= live*(100+MaxGCPercent)/100 {
		return MaxGCPercent
	}
	if target <= live*(100+MinGCPercent)/100 {
		return MinGCPercent
	}
	return int((target - live) * 100 / live)
}
