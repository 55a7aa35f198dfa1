package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// BaseSysctls are set in every namespace New creates: IPv6 on without duplicate address
// detection (addresses usable at once), no forwarding.
var BaseSysctls = []string{
	"net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0",
	"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
	"net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0",
}

// Skip skips the test under -short, without root, or without iproute2.
func Skip(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("kernel test: creates network namespaces; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("kernel test: needs iproute2")
	}
}

// Suffix returns 6 random hex digits for names of namespaces and interfaces.
func Suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// New creates the namespace name, sets BaseSysctls and then extra sysctls ("key=value") in
// it, brings loopback up, and deletes it when the test ends.
func New(t testing.TB, name string, extra ...string) string {
	t.Helper()
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v\n%s", name, err, out)
		}
	})
	for _, kv := range append(append([]string{}, BaseSysctls...), extra...) {
		Run(t, "ip", "netns", "exec", name, "sysctl", "-qw", kv)
	}
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// Run runs a command and returns its combined output; a failure fails the test.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
