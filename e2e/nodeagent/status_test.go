package nodeagent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestProbeTracker(t *testing.T) {
	tests := []struct {
		name             string
		success, failure int32
		results          []bool
		want             []bool // Ready after each result
	}{
		{name: "defaults", success: 1, failure: 3, results: []bool{false, true, false, false, false, true}, want: []bool{false, true, true, true, false, true}},
		{name: "success threshold 2", success: 2, failure: 1, results: []bool{true, false, true, true, false}, want: []bool{false, false, false, true, false}},
		{name: "zero thresholds count as 1", success: 0, failure: 0, results: []bool{true, false, true}, want: []bool{true, false, true}},
		{name: "failures must be consecutive", success: 1, failure: 2, results: []bool{true, false, true, false, false}, want: []bool{true, true, true, true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr ProbeTracker
			for i, r := range tc.results {
				before := tr.Ready
				changed := tr.Observe(r, tc.success, tc.failure)
				if tr.Ready != tc.want[i] {
					t.Fatalf("after result %d (%v): Ready = %v, want %v", i, r, tr.Ready, tc.want[i])
				}
				if changed != (before != tr.Ready) {
					t.Fatalf("after result %d: changed = %v but Ready went %v -> %v", i, changed, before, tr.Ready)
				}
			}
		})
	}
}

func TestPodStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	m0, m1 := metav1.NewTime(t0), metav1.NewTime(t1)
	hostIPs := []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8:1::11")}
	podIPs := []netip.Addr{netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("2001:db8:1000:1::2")}
	basePod := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "a", Image: "nginx"},
				{Name: "b", Image: "busybox"},
			}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort},
		}
	}
	tr, fa := true, false
	running := func(bool) corev1.ContainerState {
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: m0}}
	}
	hostIPStatus := []corev1.HostIP{{IP: "192.0.2.11"}, {IP: "2001:db8:1::11"}}
	podIPStatus := []corev1.PodIP{{IP: "198.18.1.2"}, {IP: "2001:db8:1000:1::2"}}
	conds := func(at metav1.Time, net, ready corev1.ConditionStatus, readyAt metav1.Time) []corev1.PodCondition {
		reason := ""
		if ready != corev1.ConditionTrue {
			reason = "ContainersNotReady"
		}
		return []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: at},
			{Type: corev1.PodReadyToStartContainers, Status: net, LastTransitionTime: at},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: at},
			{Type: corev1.ContainersReady, Status: ready, Reason: reason, LastTransitionTime: readyAt},
			{Type: corev1.PodReady, Status: ready, Reason: reason, LastTransitionTime: readyAt},
		}
	}

	tests := []struct {
		name string
		pod  func() *corev1.Pod
		rt   PodRuntime
		now  time.Time
		want corev1.PodStatus
	}{
		{
			name: "nothing running yet: pending",
			pod:  basePod,
			rt:   PodRuntime{HostIPs: hostIPs},
			now:  t0,
			want: corev1.PodStatus{
				Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort,
				HostIP: "192.0.2.11", HostIPs: hostIPStatus, StartTime: &m0,
				Conditions: conds(m0, corev1.ConditionFalse, corev1.ConditionFalse, m0),
				ContainerStatuses: []corev1.ContainerStatus{
					{Name: "a", Image: "nginx", ImageID: "lab://nginx", Started: &fa, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
					{Name: "b", Image: "busybox", ImageID: "lab://busybox", Started: &fa, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
				},
			},
		},
		{
			name: "start failed: pending with the reason",
			pod: func() *corev1.Pod {
				p := basePod()
				p.Spec.Containers = p.Spec.Containers[:1]
				return p
			},
			rt:  PodRuntime{HostIPs: hostIPs[:1], StartError: "listen tcp :80: address already in use"},
			now: t0,
			want: corev1.PodStatus{
				Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort,
				HostIP: "192.0.2.11", HostIPs: hostIPStatus[:1], StartTime: &m0,
				Conditions: conds(m0, corev1.ConditionFalse, corev1.ConditionFalse, m0),
				ContainerStatuses: []corev1.ContainerStatus{
					{Name: "a", Image: "nginx", ImageID: "lab://nginx", Started: &fa, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: "listen tcp :80: address already in use"}}},
				},
			},
		},
		{
			name: "running, one container not ready",
			pod:  basePod,
			rt:   PodRuntime{HostIPs: hostIPs, PodIPs: podIPs, StartedAt: t0, Ready: map[string]bool{"a": true}},
			now:  t0,
			want: corev1.PodStatus{
				Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBestEffort,
				HostIP: "192.0.2.11", HostIPs: hostIPStatus, PodIP: "198.18.1.2", PodIPs: podIPStatus, StartTime: &m0,
				Conditions: conds(m0, corev1.ConditionTrue, corev1.ConditionFalse, m0),
				ContainerStatuses: []corev1.ContainerStatus{
					{Name: "a", Image: "nginx", ImageID: "lab://nginx", ContainerID: "lab://u1/a", Started: &tr, Ready: true, State: running(true)},
					{Name: "b", Image: "busybox", ImageID: "lab://busybox", ContainerID: "lab://u1/b", Started: &tr, State: running(false)},
				},
			},
		},
		{
			name: "becomes ready later: only readiness conditions move",
			pod: func() *corev1.Pod {
				p := basePod()
				p.Status = PodStatus(p, PodRuntime{HostIPs: hostIPs, PodIPs: podIPs, StartedAt: t0, Ready: map[string]bool{"a": true}}, t0)
				return p
			},
			rt:  PodRuntime{HostIPs: hostIPs, PodIPs: podIPs, StartedAt: t0, Ready: map[string]bool{"a": true, "b": true}},
			now: t1,
			want: corev1.PodStatus{
				Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBestEffort,
				HostIP: "192.0.2.11", HostIPs: hostIPStatus, PodIP: "198.18.1.2", PodIPs: podIPStatus, StartTime: &m0,
				Conditions: conds(m0, corev1.ConditionTrue, corev1.ConditionTrue, m1),
				ContainerStatuses: []corev1.ContainerStatus{
					{Name: "a", Image: "nginx", ImageID: "lab://nginx", ContainerID: "lab://u1/a", Started: &tr, Ready: true, State: running(true)},
					{Name: "b", Image: "busybox", ImageID: "lab://busybox", ContainerID: "lab://u1/b", Started: &tr, Ready: true, State: running(true)},
				},
			},
		},
		{
			name: "scheduler's PodScheduled and foreign conditions are kept",
			pod: func() *corev1.Pod {
				p := basePod()
				p.Spec.Containers = p.Spec.Containers[:1]
				p.Status.Conditions = []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: m1, Reason: "x"},
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, LastTransitionTime: m1},
				}
				return p
			},
			rt:  PodRuntime{HostIPs: hostIPs[:1], PodIPs: podIPs[:1], StartedAt: t0, Ready: map[string]bool{"a": true}},
			now: t0,
			want: corev1.PodStatus{
				Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBestEffort,
				HostIP: "192.0.2.11", HostIPs: hostIPStatus[:1], PodIP: "198.18.1.2", PodIPs: podIPStatus[:1], StartTime: &m0,
				Conditions: []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: m1, Reason: "x"},
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, LastTransitionTime: m1},
					{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: m0},
					{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: m0},
					{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: m0},
					{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: m0},
				},
				ContainerStatuses: []corev1.ContainerStatus{
					{Name: "a", Image: "nginx", ImageID: "lab://nginx", ContainerID: "lab://u1/a", Started: &tr, Ready: true, State: running(true)},
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod()
			before := pod.DeepCopy()
			got := PodStatus(pod, tc.rt, tc.now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("PodStatus mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, pod); diff != "" {
				t.Errorf("PodStatus modified its input:\n%s", diff)
			}
		})
	}
}
