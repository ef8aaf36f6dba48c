package probe

import (
	"fmt"
	"testing"
)

func comm(s string) [16]int8 {
	var c [16]int8
	for i := range min(len(s), 15) {
		c[i] = int8(s[i])
	}
	return c
}

// Comms names like Comm, and stays bounded when names keep changing.
func TestCommsNameLikeComm(t *testing.T) {
	var cs Comms
	for _, s := range []string{"nginx", "", "wrk", "nginx", "a-fifteen-chars", "wrk"} {
		if got, want := cs.Name(comm(s)), Comm(comm(s)); got != want {
			t.Fatalf("Name(%q) = %q, want %q", s, got, want)
		}
	}
	if len(cs) != 4 {
		t.Fatalf("%d names held, want 4", len(cs))
	}
	for i := range 3 * maxComms {
		s := fmt.Sprintf("task-%d", i)
		if got := cs.Name(comm(s)); got != s {
			t.Fatalf("Name(%q) = %q", s, got)
		}
		if len(cs) > maxComms {
			t.Fatalf("%d names held, bound %d", len(cs), maxComms)
		}
	}
}
