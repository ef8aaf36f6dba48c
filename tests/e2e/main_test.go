//go:build e2e

package e2e

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, with helperEnv set, one of the helper
// processes the tests start inside their pods (dns_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helper(mode, os.Args[1:])
	}
	os.Exit(m.Run())
}
