package procmem

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssFile reads RssFile of this process in kB.
func rssFile(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssFile:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestReleaseStartupPages gives back this test binary's pages: the file
// RSS the kernel reports must drop by a good part of them.
func TestReleaseStartupPages(t *testing.T) {
	before := rssFile(t)
	n, err := ReleaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	st, err := os.Stat("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || int64(n) > st.Size()+1<<20 {
		t.Errorf("advised %d bytes of a %d-byte executable", n, st.Size())
	}
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after: nothing released", before, after)
	}
	t.Logf("RssFile %d -> %d kB, %d bytes advised", before, after, n)
}

func readMetric(t *testing.T, name string) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("runtime metric %s: kind %v", name, s[0].Value.Kind())
	}
	return s[0].Value.Uint64()
}

// restoreGC puts back the runtime's defaults for the tests after.
func restoreGC(t *testing.T) {
	t.Cleanup(func() {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64) // no limit: a negative value would leave it
	})
}

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, MaxGCPercent},
		{10 * mib, MaxGCPercent},
		{20 * mib, MaxGCPercent}, // exactly half the target
		{22 * mib, 81},
		{25 * mib, 60},
		{27 * mib, MinGCPercent}, // two thirds and more: the old default's goal
		{45 * mib, MinGCPercent},
		{500 * mib, MinGCPercent},
	} {
		if got := GCPercentFor(c.live, HeapTarget); got != c.want {
			t.Errorf("live %d MiB: GOGC %d, want %d", c.live/mib, got, c.want)
		}
	}
}

var (
	held [][]byte
	sink []byte // garbage the compiler cannot keep on the stack
)

// hold keeps n bytes live in 64 KiB blocks.
func hold(n int) {
	held = nil // a slice of the old array would keep its blocks reachable
	for ; n > 0; n -= 64 << 10 {
		held = append(held, make([]byte, 64<<10))
	}
}

// gcPercentAfterGC runs GC cycles until the tuner has caught up with the
// live heap (its finalizer runs after the cycle) and returns the GOGC in
// effect and the live heap.
func gcPercentAfterGC(t *testing.T, target uint64) (int, uint64) {
	t.Helper()
	var got, live uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(2 * time.Millisecond)
		got, live = readMetric(t, "/gc/gogc:percent"), readMetric(t, "/gc/heap/live:bytes")
		if int(got) == GCPercentFor(live, target) {
			break
		}
	}
	return int(got), live
}

// TestTunerFollowsLiveHeap holds live heaps of a real size and checks the
// GOGC the runtime reports after GC cycles.
func TestTunerFollowsLiveHeap(t *testing.T) {
	restoreGC(t)
	const target = 32 << 20
	tu := StartTuner(target)
	defer tu.Stop()
	defer hold(0)
	for _, c := range []struct {
		live, want int
	}{
		{4 << 20, MaxGCPercent},  // a quarter of the target
		{28 << 20, MinGCPercent}, // beyond two thirds
		{20 << 20, 60},           // (32-20)/20, the test binary's own heap aside
		{4 << 20, MaxGCPercent},  // back down
	} {
		hold(c.live)
		got, live := gcPercentAfterGC(t, target)
		if got != GCPercentFor(live, target) || got < c.want-5 || got > c.want {
			t.Errorf("%d MiB held (%d B live): GOGC %d, want %d", c.live>>20, live, got, c.want)
		}
	}
}

// TestTunerNoContinuousGC: a live heap beyond the target (a node with far
// more flows than the target was sized for) keeps GOGC 50's pace of a cycle
// per half the live heap allocated, where a memory limit at the target
// would collect back to back.
func TestTunerNoContinuousGC(t *testing.T) {
	restoreGC(t)
	const target, live = 16 << 20, 48 << 20
	tu := StartTuner(target)
	defer tu.Stop()
	defer hold(0)
	hold(live)
	if got, _ := gcPercentAfterGC(t, target); got != MinGCPercent {
		t.Fatalf("%d MiB live, %d MiB target: GOGC %d", live>>20, target>>20, got)
	}
	cycles := func(alloc int) uint64 {
		before := readMetric(t, "/gc/cycles/total:gc-cycles")
		for ; alloc > 0; alloc -= 64 << 10 {
			sink = make([]byte, 64<<10)
		}
		return readMetric(t, "/gc/cycles/total:gc-cycles") - before
	}
	const alloc = 20 * live / 2 // 20 cycles' worth at GOGC 50
	tuned := cycles(alloc)
	if tuned > 40 {
		t.Errorf("%d MiB allocated over %d MiB live: %d GC cycles, GOGC 50 takes ~20", alloc>>20, live>>20, tuned)
	}
	tu.Stop()
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(target)
	limited := cycles(alloc)
	debug.SetMemoryLimit(math.MaxInt64) // no limit: a negative value would leave it
	t.Logf("%d MiB allocated over %d MiB live: %d GC cycles tuned, %d under a %d MiB memory limit", alloc>>20, live>>20, tuned, limited, target>>20)
}

// TestTuneGCEnvironment: GOGC in the environment wins; GOMEMLIMIT is
// named and left to the runtime, the tuner running under it.
func TestTuneGCEnvironment(t *testing.T) {
	restoreGC(t)
	t.Setenv("GOMEMLIMIT", "200MiB")
	t.Setenv("GOGC", "80")
	debug.SetGCPercent(70)
	tu, got := TuneGC()
	if tu != nil || got != "GOGC=80 from the environment, GOMEMLIMIT=200MiB from the environment" {
		t.Errorf("GOGC=80 GOMEMLIMIT=200MiB in the environment: tuner %v, %q in effect", tu, got)
	}
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if p := readMetric(t, "/gc/gogc:percent"); p != 70 {
		t.Errorf("GOGC in the environment: GOGC changed to %d", p)
	}

	os.Unsetenv("GOGC")
	tu, got = TuneGC()
	if tu == nil || !strings.HasSuffix(got, "by live heap, heap target 40 MiB, GOMEMLIMIT=200MiB from the environment") {
		t.Fatalf("GOMEMLIMIT=200MiB, no GOGC: tuner %v, %q in effect", tu, got)
	}
	tu.Stop()
	os.Unsetenv("GOMEMLIMIT")
	tu, got = TuneGC()
	if tu == nil || strings.Contains(got, "GOMEMLIMIT") {
		t.Fatalf("no GOGC nor GOMEMLIMIT: tuner %v, %q in effect", tu, got)
	}
	tu.Stop()
}
