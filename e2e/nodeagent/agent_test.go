package nodeagent

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRuntimeOfTerminatingPod(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", DeletionTimestamp: &now}}
	run := &podRun{
		rec:       PodRecord{IPs: []netip.Addr{netip.MustParseAddr("198.18.1.2")}},
		startedAt: now.Time,
		ready:     map[string]*ProbeTracker{"c": {Ready: true}},
	}
	tests := []struct {
		name    string
		unready bool
		want    bool
	}{
		{name: "default: readiness follows probes while terminating, as the kubelet's", want: true},
		{name: "--unready-when-terminating", unready: true, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{cfg: Config{UnreadyWhenTerminating: tc.unready}}
			if got := a.runtimeOf(pod, run).Ready["c"]; got != tc.want {
				t.Errorf("ready = %v, want %v", got, tc.want)
			}
		})
	}
}
