package preflight

import "golang.org/x/sys/unix"

func sysMount(source, target, fstype string) error {
	return unix.Mount(source, target, fstype, 0, "")
}
