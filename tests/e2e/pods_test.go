//go:build e2e

package e2e

import (
	"testing"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// pod is a network namespace "pod" in a kubelet-style cgroup (testkit.Pod).
type pod = testkit.Pod

// newPodPair builds two pods joined by a veth pair:
// a = 10.202.0.10 / fd00:202::10, b = 10.202.0.20 / fd00:202::20.
func newPodPair(t *testing.T) (a, b *pod) {
	return testkit.NewPodPair(t, "a", "b", 202)
}

// newPodPairNet builds pods named na and nb joined by a veth pair, at
// 10.<net>.0.10 / fd00:<net>::10 and 10.<net>.0.20 / fd00:<net>::20.
func newPodPairNet(t *testing.T, na, nb string, net int) (a, b *pod) {
	return testkit.NewPodPair(t, na, nb, net)
}
