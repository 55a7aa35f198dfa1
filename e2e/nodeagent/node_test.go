package nodeagent

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testNodeSpec() NodeSpec {
	return NodeSpec{
		Name:           "ls-node1",
		IPs:            []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8:1::11")},
		PodCIDRs:       []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24"), netip.MustParsePrefix("2001:db8:1000:1::/64")},
		Capacity:       DefaultCapacity(110),
		KubeletVersion: DefaultKubeletVersion,
	}
}

func TestApplyNodeSpec(t *testing.T) {
	tests := []struct {
		name        string
		node        corev1.Node
		wantChanged bool
		wantErr     string
		wantCIDRs   []string
	}{
		{name: "new node", wantChanged: true, wantCIDRs: []string{"198.18.1.0/24", "2001:db8:1000:1::/64"}},
		{
			name: "same podCIDRs, foreign label kept",
			node: corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "ls-node1", Labels: map[string]string{"zone": "a"}},
				Spec:       corev1.NodeSpec{PodCIDR: "198.18.1.0/24", PodCIDRs: []string{"198.18.1.0/24", "2001:db8:1000:1::/64"}},
			},
			wantChanged: true, wantCIDRs: []string{"198.18.1.0/24", "2001:db8:1000:1::/64"},
		},
		{
			name: "different podCIDR is an error",
			node: corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "ls-node1"},
				Spec:       corev1.NodeSpec{PodCIDR: "198.18.9.0/24", PodCIDRs: []string{"198.18.9.0/24"}},
			},
			wantErr: "immutable",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			node := tc.node.DeepCopy()
			changed, err := ApplyNodeSpec(node, testNodeSpec())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if diff := cmp.Diff(tc.node.Spec, node.Spec); diff != "" {
					t.Errorf("spec changed on error:\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if diff := cmp.Diff(tc.wantCIDRs, node.Spec.PodCIDRs); diff != "" {
				t.Errorf("podCIDRs (-want +got):\n%s", diff)
			}
			if node.Spec.PodCIDR != tc.wantCIDRs[0] {
				t.Errorf("podCIDR = %q", node.Spec.PodCIDR)
			}
			if node.Labels[corev1.LabelHostname] != "ls-node1" || node.Labels[corev1.LabelOSStable] != "linux" {
				t.Errorf("labels = %v", node.Labels)
			}
			for k, v := range tc.node.Labels {
				if node.Labels[k] != v {
					t.Errorf("label %s lost", k)
				}
			}
			again, err := ApplyNodeSpec(node, testNodeSpec())
			if err != nil || again {
				t.Errorf("second apply: changed=%v err=%v, want no change", again, err)
			}
		})
	}
}

func TestNodeStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(10 * time.Second)
	spec := testNodeSpec()

	st0 := NodeStatus(corev1.NodeStatus{}, spec, true, "KubeletReady", "ok", t0)
	wantAddrs := []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "192.0.2.11"},
		{Type: corev1.NodeInternalIP, Address: "2001:db8:1::11"},
		{Type: corev1.NodeHostName, Address: "ls-node1"},
	}
	if diff := cmp.Diff(wantAddrs, st0.Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if q := st0.Capacity[corev1.ResourcePods]; q.Value() != 110 {
		t.Errorf("pods capacity = %v", q.String())
	}
	if st0.NodeInfo.KubeletVersion != DefaultKubeletVersion {
		t.Errorf("kubelet version = %q", st0.NodeInfo.KubeletVersion)
	}
	ready := func(st corev1.NodeStatus) corev1.NodeCondition {
		for _, c := range st.Conditions {
			if c.Type == corev1.NodeReady {
				return c
			}
		}
		t.Fatal("no Ready condition")
		return corev1.NodeCondition{}
	}
	if c := ready(st0); c.Status != corev1.ConditionTrue || !c.LastHeartbeatTime.Time.Equal(t0) {
		t.Errorf("Ready = %+v", c)
	}

	// Heartbeat: same status, new heartbeat, transition time kept.
	st1 := NodeStatus(st0, spec, true, "KubeletReady", "ok", t1)
	if c := ready(st1); !c.LastHeartbeatTime.Time.Equal(t1) || !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("after heartbeat: Ready = %+v", c)
	}
	if len(st1.Conditions) != 4 {
		t.Errorf("conditions = %d, want 4", len(st1.Conditions))
	}
	// Not ready: transition.
	st2 := NodeStatus(st1, spec, false, "NodeAgentStopped", "bye", t1)
	if c := ready(st2); c.Status != corev1.ConditionFalse || !c.LastTransitionTime.Time.Equal(t1) || c.Reason != "NodeAgentStopped" {
		t.Errorf("after stop: Ready = %+v", c)
	}
}
