package nodeagent

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// runTestProgram runs the test binary's "rawsocket" program through the helper with spec
// (argv and env filled in here) and returns its exit code and output.
func runTestProgram(t *testing.T, spec helperSpec) (int, string) {
	t.Helper()
	spec.Argv = []string{"/proc/self/exe"}
	spec.Env = []string{"NODEAGENT_TEST_PROGRAM=rawsocket"}
	var out bytes.Buffer
	cmd := helperCommand("/proc/self/exe")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := startHelper(cmd, spec); err != nil {
		t.Fatalf("start: %v", err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// capLine returns the hex mask of a "CapXxx:" line of the program's output.
func capLine(t *testing.T, out, name string) uint64 {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in output:\n%s", name, out)
	return 0
}

func capMask(names ...string) uint64 {
	var m uint64
	for _, n := range names {
		i, _ := capNumber(n)
		m |= 1 << i
	}
	return m
}

// TestCapabilitiesOnRawSocket runs a real program in a pod-like netns and mount namespace
// with the runtime's capability rules and checks them on a raw socket: root with NET_RAW
// (by default or added) opens one; root without it does not; a non-root user with NET_RAW
// added does not either (it is only in the bounding set, as with containerd and runc),
// which is the speaker's bug with runAsUser 65532.
func TestCapabilitiesOnRawSocket(t *testing.T) {
	requireRoot(t)
	plain := namespaces{dir: DefaultNetnsDir}
	nsName := "lst-" + randomSuffix(t) + "-caps"
	testNetns(t, plain, nsName)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 198.19.0.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	drop := func(d ...corev1.Capability) *corev1.Capabilities { return &corev1.Capabilities{Drop: d} }
	tests := []struct {
		name     string
		uid      uint32
		sc       *corev1.SecurityContext
		wantExit int
	}{
		{"root, default set", 0, nil, 0},
		{"root, drop ALL", 0, &corev1.SecurityContext{Capabilities: drop("ALL")}, 1},
		{"root, drop NET_RAW", 0, &corev1.SecurityContext{Capabilities: drop("NET_RAW")}, 1},
		{"root, drop ALL add NET_RAW", 0, &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_RAW"}}}, 0},
		{"65532, drop ALL add NET_ADMIN NET_RAW (the speaker)", 65532, &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}}}, 1},
		{"65532, default set", 65532, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caps, err := ContainerCapabilities(tc.sc)
			if err != nil {
				t.Fatal(err)
			}
			code, out := runTestProgram(t, helperSpec{
				NetnsPath: filepath.Join(DefaultNetnsDir, nsName), NewMountNS: true, RemountSys: true,
				Mounts: []helperMount{{Source: resolv, Target: "/etc/resolv.conf", ReadOnly: true}},
				UID:    tc.uid, GID: tc.uid, Caps: caps,
			})
			t.Logf("output:\n%s", out)
			if code != tc.wantExit {
				t.Fatalf("exit code %d, want %d", code, tc.wantExit)
			}
			if !strings.Contains(out, "Uid: "+strconv.Itoa(int(tc.uid))+" ") {
				t.Errorf("program does not run as uid %d", tc.uid)
			}
			if got, want := capLine(t, out, "CapBnd"), capMask(caps...); got != want {
				t.Errorf("bounding set %x, want %x", got, want)
			}
			wantEff := capMask(caps...)
			if tc.uid != 0 {
				wantEff = 0
			}
			if got := capLine(t, out, "CapEff"); got != wantEff {
				t.Errorf("effective set %x, want %x", got, wantEff)
			}
			if got := capLine(t, out, "CapAmb"); got != 0 {
				t.Errorf("ambient set %x, want none", got)
			}
		})
	}
}

// TestHelperStartError checks that a program that cannot start is an error of the start,
// not an exit of the program.
func TestHelperStartError(t *testing.T) {
	requireRoot(t)
	cmd := helperCommand("/proc/self/exe")
	err := startHelper(cmd, helperSpec{Argv: []string{"no-such-program-here"}, Caps: DefaultCapabilities})
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("start error = %v, want a not-found error", err)
	}
}
