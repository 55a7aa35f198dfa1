package nodeagent

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// DefaultNetnsPrefix starts the name of every pod network namespace the agent creates, so
// the lab can find leftovers by prefix.
const DefaultNetnsPrefix = "ls-pod-"

// NetnsAnnotation is the Pod annotation in which the agent records the name of the pod's
// network namespace (use it with `ip netns exec`).
const NetnsAnnotation = "lab.loadstone.io/netns"

// UnhealthyAnnotation, set to "true" on a Pod, makes its built-in HTTP workload answer 503
// to every request, so readiness probes fail (tests use it to flip readiness).
const UnhealthyAnnotation = "lab.loadstone.io/unhealthy"

// ExitOnSigtermAnnotation, set to "true" on a Pod, makes the agent kill the pod as soon as
// it is deleted, like a process that exits at once on SIGTERM, instead of serving until the
// grace period ends (the default, which graceful-termination tests rely on).
const ExitOnSigtermAnnotation = "lab.loadstone.io/exit-on-sigterm"

// maxIfNameLen is the longest interface name Linux accepts (IFNAMSIZ - 1).
const maxIfNameLen = 15

func shortHash(s string, hexChars int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:hexChars]
}

// nodeTag is a short, stable tag for a node name: "n" plus the node name's trailing digits
// ("ls-node2" -> "n2"), or "h" plus a hash when the name does not end in digits.
func nodeTag(node string) string {
	i := len(node)
	for i > 0 && node[i-1] >= '0' && node[i-1] <= '9' {
		i--
	}
	if digits := node[i:]; digits != "" && len(digits) <= 4 {
		return "n" + digits
	}
	return "h" + shortHash(node, 6)
}

// NetnsName is the deterministic name of a pod's network namespace:
// prefix + node tag + "-" + 8 hex characters of a hash of the pod UID,
// for example "ls-pod-n1-3fa2b1c9".
func NetnsName(prefix, node string, uid types.UID) string {
	return prefix + nodeTag(node) + "-" + shortHash(string(uid), 8)
}

// HostVethName is the name of the node-side end of a pod's veth pair: "lsv" plus 10 hex
// characters of a hash of the pod UID (13 characters, under the 15-character limit).
// The pod-side end is always "eth0" inside the pod's namespace.
func HostVethName(uid types.UID) string {
	return "lsv" + shortHash(string(uid), 10)
}

// validIfName reports whether s is usable as a Linux interface name.
func validIfName(s string) bool {
	return s != "" && len(s) <= maxIfNameLen && !strings.ContainsAny(s, "/: \t\n")
}
