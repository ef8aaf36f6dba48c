//go:build !linux

package procmem

import "errors"

// ReleaseStartupPages is Linux-only.
func ReleaseStartupPages() (int, error) { return 0, errors.New("releasing start-up pages needs Linux") }
