package identity

import "strings"

// ParseCgroupPath extracts the container id and Kubernetes pod uid from a
// cgroup path written by kubelet (systemd or cgroupfs driver), docker,
// containerd, CRI-O or podman. Either is "" when the path does not carry it.
// The pod uid comes back with dashes, as the API server spells it.
//
//	/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<64hex>.scope
//	/kubepods/besteffort/pod<uid>/<64hex>
//	/system.slice/docker-<64hex>.scope, crio-<64hex>.scope, libpod-<64hex>.scope
func ParseCgroupPath(path string) (containerID, podUID string) {
	// The deepest match wins: a container's own sub-cgroups (".../init") sit
	// below it, and nested runtimes put the inner container deeper.
	for comp := range strings.SplitSeq(path, "/") {
		if comp == "" {
			continue
		}
		// containerd's systemd-driver form "kubepods-...-pod<uid>.slice:cri-containerd:<id>".
		for part := range strings.SplitSeq(comp, ":") {
			if uid := podUIDOf(part); uid != "" {
				podUID = uid
			} else if id := containerIDOf(part); id != "" {
				containerID = id
			}
		}
	}
	return containerID, podUID
}

var runtimePrefixes = []string{"cri-containerd-", "docker-", "crio-", "libpod-", "containerd-"}

func containerIDOf(comp string) string {
	comp = strings.TrimSuffix(comp, ".scope")
	for _, p := range runtimePrefixes {
		if rest, ok := strings.CutPrefix(comp, p); ok {
			comp = rest
			break
		}
	}
	// "crio-conmon-<id>" / "libpod-conmon-<id>" are the runtime's monitor, not the container.
	if len(comp) == 64 && isHex(comp) {
		return comp
	}
	return ""
}

func podUIDOf(comp string) string {
	var uid string
	if rest, ok := strings.CutSuffix(comp, ".slice"); ok {
		// kubepods-pod<uid>.slice, kubepods-burstable-pod<uid>.slice
		i := strings.LastIndex(rest, "-pod")
		if i < 0 {
			return ""
		}
		uid = strings.ReplaceAll(rest[i+len("-pod"):], "_", "-")
	} else if rest, ok := strings.CutPrefix(comp, "pod"); ok {
		uid = rest
	} else {
		return ""
	}
	if !isPodUID(uid) {
		return ""
	}
	return uid
}

// isPodUID accepts an RFC 4122 uuid, or the 32-hex hash kubelet uses as the
// uid of static (mirror) pods.
func isPodUID(s string) bool {
	switch len(s) {
	case 32:
		return isHex(s)
	case 36:
		for i := 0; i < len(s); i++ {
			switch i {
			case 8, 13, 18, 23:
				if s[i] != '-' {
					return false
				}
			default:
				if !isHexByte(s[i]) {
					return false
				}
			}
		}
		return true
	}
	return false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return true
}

func isHexByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
}
