package lab

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/loadstone-lb/loadstone/e2e/nodeagent"
)

// PodNetns returns the network namespace in which the node agent runs a Pod (use it with
// `ip netns exec` or nsthread.DoNamed). The agent's annotation wins when present; otherwise the
// name is computed the way the agent names it (the Node authorizer does not let a node
// annotate pods, so the annotation is usually absent).
func PodNetns(pod *corev1.Pod) string {
	if ns := pod.Annotations[nodeagent.NetnsAnnotation]; ns != "" {
		return ns
	}
	if pod.Spec.NodeName == "" || pod.UID == "" {
		return ""
	}
	return nodeagent.NetnsName(nodeagent.DefaultNetnsPrefix, pod.Spec.NodeName, pod.UID)
}
