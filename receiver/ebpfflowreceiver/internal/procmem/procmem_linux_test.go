package procmem

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
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

func TestSetGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "80")
	if got := SetGCPercent(); got != "80" {
		t.Errorf("GOGC=80 in the environment: %q in effect", got)
	}
	if prev := debug.SetGCPercent(100); prev != 100 {
		t.Errorf("GOGC set in the environment was overridden: %d", prev)
	}
	os.Unsetenv("GOGC")
	if got := SetGCPercent(); got != strconv.Itoa(DefaultGCPercent) {
		t.Errorf("no GOGC: %q in effect", got)
	}
	if prev := debug.SetGCPercent(100); prev != DefaultGCPercent {
		t.Errorf("no GOGC: the runtime has %d", prev)
	}
}
