package nodeagent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestWorkloadPorts(t *testing.T) {
	tests := []struct {
		name string
		spec corev1.PodSpec
		want []WorkloadPort
	}{
		{name: "no containers"},
		{name: "no ports", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}},
		{
			name: "default protocol is TCP, duplicates and SCTP dropped, TCP and UDP on one number kept",
			spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "a", Ports: []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}, {ContainerPort: 53, Protocol: corev1.ProtocolTCP}}},
				{Name: "b", Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {ContainerPort: 9, Protocol: corev1.ProtocolSCTP}, {ContainerPort: 8080}}},
			}},
			want: []WorkloadPort{{80, corev1.ProtocolTCP}, {53, corev1.ProtocolUDP}, {53, corev1.ProtocolTCP}, {8080, corev1.ProtocolTCP}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, WorkloadPorts(&tc.spec)); diff != "" {
				t.Errorf("WorkloadPorts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIdentityAnswer(t *testing.T) {
	id := Identity{Pod: "nginx-abc", Node: "ls-node1"}
	if got, want := id.Answer("198.51.100.10:41234"), "pod=nginx-abc node=ls-node1 client=198.51.100.10:41234\n"; got != want {
		t.Errorf("Answer = %q, want %q", got, want)
	}
}
