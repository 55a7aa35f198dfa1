package nodeagent

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// capNames are the Linux capabilities by number (linux/capability.h).
var capNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// DefaultCapabilities is containerd's default capability set of a container (the set a
// container has before its securityContext adds or drops any).
var DefaultCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}

// capNumber returns the number of a capability named with or without "CAP_".
func capNumber(name string) (int, bool) {
	n := strings.TrimPrefix(strings.ToUpper(name), "CAP_")
	i := slices.Index(capNames, n)
	return i, i >= 0
}

// ContainerCapabilities computes a container's capability set with the container
// runtime's rules: the default set (all of them when privileged), minus the dropped ones
// (ALL drops every one), plus the added ones (ALL adds every one). The result is the
// bounding set; for a root user it is also the effective and permitted set, for any other
// user those are empty (no ambient capabilities, as with containerd and runc).
func ContainerCapabilities(sc *corev1.SecurityContext) ([]string, error) {
	set := map[string]bool{}
	for _, c := range DefaultCapabilities {
		set[c] = true
	}
	if sc != nil && sc.Privileged != nil && *sc.Privileged {
		for _, c := range capNames {
			set[c] = true
		}
	}
	if sc != nil && sc.Capabilities != nil {
		for _, d := range sc.Capabilities.Drop {
			name := strings.TrimPrefix(strings.ToUpper(string(d)), "CAP_")
			if name == "ALL" {
				clear(set)
				continue
			}
			if _, ok := capNumber(name); !ok {
				return nil, fmt.Errorf("unknown capability %q", d)
			}
			delete(set, name)
		}
		for _, a := range sc.Capabilities.Add {
			name := strings.TrimPrefix(strings.ToUpper(string(a)), "CAP_")
			if name == "ALL" {
				for _, c := range capNames {
					set[c] = true
				}
				continue
			}
			if _, ok := capNumber(name); !ok {
				return nil, fmt.Errorf("unknown capability %q", a)
			}
			set[name] = true
		}
	}
	var out []string
	for _, c := range capNames {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, nil
}
