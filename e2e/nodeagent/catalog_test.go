package nodeagent

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestImageRepository(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                                   "docker.io/library/nginx",
		"nginx:1.27":                              "docker.io/library/nginx",
		"library/busybox:1.36":                    "docker.io/library/busybox",
		"docker.io/alpine@sha256:abc":             "docker.io/library/alpine",
		"curlimages/curl:8.10.1":                  "docker.io/curlimages/curl",
		"ghcr.io/loadstone-lb/loadstone:v0.3.0":   "ghcr.io/loadstone-lb/loadstone",
		"registry.k8s.io/coredns/coredns:v1.12.0": "registry.k8s.io/coredns/coredns",
		"localhost:5000/web:dev":                  "localhost:5000/web",
	} {
		if got := ImageRepository(in); got != want {
			t.Errorf("ImageRepository(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCatalogResolve(t *testing.T) {
	cat := ImageCatalog{Binaries: map[string]string{"speaker": "/lab/bin/speaker", "controller": "/lab/bin/controller"}}
	tcp80 := []WorkloadPort{{Port: 80, Protocol: corev1.ProtocolTCP}}
	tests := []struct {
		name string
		c    corev1.Container
		want Launch
	}{
		{"speaker as the chart sets it", corev1.Container{Image: "ghcr.io/loadstone-lb/loadstone:0.1.0", Command: []string{"/speaker"}, Args: []string{"--node-name=$(NODE_NAME)"}},
			Launch{Kind: LaunchProgram, Argv: []string{"/lab/bin/speaker", "--node-name=$(NODE_NAME)"}}},
		{"controller, any tag", corev1.Container{Image: "ghcr.io/loadstone-lb/loadstone", Command: []string{"/controller"}},
			Launch{Kind: LaunchProgram, Argv: []string{"/lab/bin/controller"}}},
		{"loadstone without command", corev1.Container{Image: "ghcr.io/loadstone-lb/loadstone:1"},
			Launch{Kind: LaunchProgram, Error: "Loadstone's image has no default command: set command to /speaker or /controller"}},
		{"coredns without binary", corev1.Container{Image: "registry.k8s.io/coredns/coredns:v1.12.0"},
			Launch{Kind: LaunchProgram, Error: "the lab has no CoreDNS binary (node agent --coredns-binary is not set)"}},
		{"busybox default", corev1.Container{Image: "busybox"}, Launch{Kind: LaunchProgram, Argv: []string{"sh"}}},
		{"busybox command", corev1.Container{Image: "busybox:1.36", Command: []string{"sh", "-c"}, Args: []string{"echo hi"}},
			Launch{Kind: LaunchProgram, Argv: []string{"sh", "-c", "echo hi"}}},
		{"busybox args replace sh", corev1.Container{Image: "busybox", Args: []string{"sleep", "5"}}, Launch{Kind: LaunchProgram, Argv: []string{"sleep", "5"}}},
		{"curl args", corev1.Container{Image: "curlimages/curl", Args: []string{"-s", "http://web"}}, Launch{Kind: LaunchProgram, Argv: []string{"curl", "-s", "http://web"}}},
		{"netshoot default", corev1.Container{Image: "nicolaka/netshoot:latest"}, Launch{Kind: LaunchProgram, Argv: []string{"sh"}}},
		{"nginx without ports", corev1.Container{Image: "nginx"}, Launch{Kind: LaunchBuiltin, DefaultPorts: tcp80}},
		{"httpd without ports", corev1.Container{Image: "httpd:2.4"}, Launch{Kind: LaunchBuiltin, DefaultPorts: tcp80}},
		{"other image", corev1.Container{Image: "example.com/app:1"}, Launch{Kind: LaunchBuiltin}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cat.Resolve(&tc.c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
	withDNS := ImageCatalog{CoreDNS: "/lab/bin/coredns"}
	got := withDNS.Resolve(&corev1.Container{Image: "coredns/coredns:1.11.1", Args: []string{"-conf", "/etc/coredns/Corefile"}})
	if want := []string{"/lab/bin/coredns", "-conf", "/etc/coredns/Corefile"}; !reflect.DeepEqual(got.Argv, want) || got.Error != "" {
		t.Errorf("coredns = %+v", got)
	}
	// Declared ports win over the image's default.
	nginx := corev1.Container{Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}
	if got := containerPorts(&nginx, cat.Resolve(&nginx)); !reflect.DeepEqual(got, []WorkloadPort{{Port: 8080, Protocol: corev1.ProtocolTCP}}) {
		t.Errorf("nginx with ports serves %v", got)
	}
}

func TestContainerCapabilities(t *testing.T) {
	caps := func(add, drop []corev1.Capability) *corev1.SecurityContext {
		return &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: add, Drop: drop}}
	}
	tests := []struct {
		name string
		sc   *corev1.SecurityContext
		want []string
	}{
		{"default", nil, []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"}},
		{"drop ALL add two", caps([]corev1.Capability{"NET_ADMIN", "CAP_NET_RAW"}, []corev1.Capability{"ALL"}), []string{"NET_ADMIN", "NET_RAW"}},
		{"drop one", caps(nil, []corev1.Capability{"NET_RAW", "MKNOD"}), []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP"}},
		{"drop ALL", caps(nil, []corev1.Capability{"ALL"}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ContainerCapabilities(tc.sc)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ContainerCapabilities = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := ContainerCapabilities(caps([]corev1.Capability{"NET_WIZARD"}, nil)); err == nil {
		t.Error("an unknown capability is accepted")
	}
}

func TestBackoffAndRestartPolicy(t *testing.T) {
	b := DefaultBackoff
	var waits []time.Duration
	var w time.Duration
	for range 7 {
		w = b.Next(w, time.Second)
		waits = append(waits, w)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	if !reflect.DeepEqual(waits, want) {
		t.Errorf("backoff %v, want %v", waits, want)
	}
	if got := b.Next(5*time.Minute, 10*time.Minute); got != 10*time.Second {
		t.Errorf("after 10 min running the backoff is %v, want it reset to 10s", got)
	}
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		code   int32
		want   bool
	}{{corev1.RestartPolicyAlways, 0, true}, {"", 1, true}, {corev1.RestartPolicyOnFailure, 0, false}, {corev1.RestartPolicyOnFailure, 2, true}, {corev1.RestartPolicyNever, 2, false}} {
		if got := ShouldRestart(tc.policy, tc.code); got != tc.want {
			t.Errorf("ShouldRestart(%q, %d) = %v", tc.policy, tc.code, got)
		}
	}
}

func TestContainerStatusCrashLoop(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ended := &Termination{ExitCode: 3, Reason: "Error", StartedAt: t0, FinishedAt: t0.Add(time.Second)}
	st := ContainerState{Instance: 2, RestartCount: 2, Terminated: ended, WaitingReason: "CrashLoopBackOff", WaitingMessage: "back-off 20s"}
	cs := containerStatus(corev1.Container{Name: "main", Image: "busybox"}, "uid", st, true)
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || cs.RestartCount != 2 || cs.Ready {
		t.Errorf("waiting status %+v", cs)
	}
	if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 3 {
		t.Errorf("last state %+v", cs.LastTerminationState)
	}
	st = ContainerState{Instance: 3, RestartCount: 3, RunningSince: t0.Add(time.Minute), Started: true, LastTerminated: ended}
	cs = containerStatus(corev1.Container{Name: "main"}, "uid", st, true)
	if cs.State.Running == nil || !cs.Ready || cs.LastTerminationState.Terminated.ExitCode != 3 || cs.ContainerID != "lab://uid/main/3" {
		t.Errorf("running status %+v", cs)
	}
	st = ContainerState{Instance: 0, Terminated: &Termination{ExitCode: 0, Reason: "Completed"}, Done: true}
	if cs = containerStatus(corev1.Container{Name: "main"}, "uid", st, false); cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" {
		t.Errorf("done status %+v", cs)
	}
}
