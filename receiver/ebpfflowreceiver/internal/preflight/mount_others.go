//go:build !linux

package preflight

import "errors"

func sysMount(source, target, fstype string) error {
	return errors.New("mounting needs Linux")
}
