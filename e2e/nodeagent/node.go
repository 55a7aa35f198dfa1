package nodeagent

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrPodCIDRConflict means the Node already has other podCIDRs than the agent's.
var ErrPodCIDRConflict = errors.New("podCIDRs conflict")

// DefaultKubeletVersion is the version string the agent reports in nodeInfo.
const DefaultKubeletVersion = "v1.37.2-loadstone-lab"

// NodeSpec is what the agent says about its node.
type NodeSpec struct {
	Name     string
	IPs      []netip.Addr   // InternalIPs, IPv4 first
	PodCIDRs []netip.Prefix // IPv4 first
	// Capacity is reported as both capacity and allocatable.
	Capacity       corev1.ResourceList
	KubeletVersion string
	KernelVersion  string
}

// DefaultCapacity is the capacity reported when none is configured: nominal figures (all
// nodes of the lab share one machine), and as many pods as the IPv4 pod CIDR holds.
func DefaultCapacity(maxPods int) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
	}
}

// ApplyNodeSpec brings node's labels and spec to what spec asks and reports whether it
// changed anything. A podCIDR already set to something else is an error: spec.podCIDR is
// immutable once set.
func ApplyNodeSpec(node *corev1.Node, spec NodeSpec) (bool, error) {
	before := node.DeepCopy()
	node.Name = spec.Name
	labels := maps.Clone(node.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[corev1.LabelHostname] = spec.Name
	labels[corev1.LabelOSStable] = "linux"
	labels[corev1.LabelArchStable] = runtime.GOARCH
	node.Labels = labels

	var cidrs []string
	for _, p := range spec.PodCIDRs {
		cidrs = append(cidrs, p.String())
	}
	if node.Spec.PodCIDR != "" || len(node.Spec.PodCIDRs) > 0 {
		if !equalStrings(node.Spec.PodCIDRs, cidrs) {
			return false, fmt.Errorf("%w: node %s already has podCIDRs %v; the agent is configured with %v (podCIDRs are immutable: delete the Node first)", ErrPodCIDRConflict, spec.Name, node.Spec.PodCIDRs, cidrs)
		}
	} else if len(cidrs) > 0 {
		node.Spec.PodCIDR = cidrs[0]
		node.Spec.PodCIDRs = cidrs
	}
	return !equalStrings(keysValues(before.Labels), keysValues(node.Labels)) || before.Spec.PodCIDR != node.Spec.PodCIDR, nil
}

func keysValues(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func equalStrings(a, b []string) bool { return slices.Equal(a, b) }

// NodeStatus computes the node's status from its current one: addresses, capacity,
// nodeInfo, and the Ready condition (true with ready, with reason and message) plus the
// pressure conditions, all with heartbeat now. Transition times are kept while a
// condition's status does not change; conditions of other writers are kept.
func NodeStatus(old corev1.NodeStatus, spec NodeSpec, ready bool, reason, message string, now time.Time) corev1.NodeStatus {
	st := *old.DeepCopy()
	mnow := metav1.NewTime(now.Truncate(time.Second))
	st.Addresses = nil
	for _, a := range spec.IPs {
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a.String()})
	}
	st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: spec.Name})
	st.Capacity = spec.Capacity.DeepCopy()
	st.Allocatable = spec.Capacity.DeepCopy()
	st.Phase = ""
	st.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               shortHash("machine/"+spec.Name, 32),
		SystemUUID:              shortHash("uuid/"+spec.Name, 32),
		BootID:                  old.NodeInfo.BootID,
		KernelVersion:           spec.KernelVersion,
		OSImage:                 "Loadstone lab node (network namespace)",
		ContainerRuntimeVersion: "loadstone-lab://" + spec.KubeletVersion,
		KubeletVersion:          spec.KubeletVersion,
		OperatingSystem:         "linux",
		Architecture:            runtime.GOARCH,
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	setNodeCondition(&st, corev1.NodeReady, status, reason, message, mnow)
	setNodeCondition(&st, corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "", mnow)
	setNodeCondition(&st, corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "", mnow)
	setNodeCondition(&st, corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "", mnow)
	return st
}

func setNodeCondition(st *corev1.NodeStatus, t corev1.NodeConditionType, status corev1.ConditionStatus, reason, message string, now metav1.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = status, reason, message, now
		return
	}
	st.Conditions = append(st.Conditions, corev1.NodeCondition{
		Type: t, Status: status, Reason: reason, Message: message, LastHeartbeatTime: now, LastTransitionTime: now,
	})
}
