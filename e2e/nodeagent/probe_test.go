package nodeagent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolvePort(t *testing.T) {
	c := &corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	tests := []struct {
		name    string
		port    intstr.IntOrString
		want    int
		wantErr bool
	}{
		{"number", intstr.FromInt32(80), 80, false},
		{"named", intstr.FromString("http"), 8080, false},
		{"numeric string", intstr.FromString("81"), 81, false},
		{"unknown name", intstr.FromString("grpc"), 0, true},
		{"zero", intstr.FromInt32(0), 0, true},
		{"too big", intstr.FromInt32(70000), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolvePort(tc.port, c)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("resolvePort = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestProbeTiming(t *testing.T) {
	d, p, to, s, f := probeTiming(&corev1.Probe{})
	if d != 0 || p != 10*time.Second || to != time.Second || s != 1 || f != 3 {
		t.Errorf("defaults = %v %v %v %d %d", d, p, to, s, f)
	}
	d, p, to, s, f = probeTiming(&corev1.Probe{InitialDelaySeconds: 2, PeriodSeconds: 1, TimeoutSeconds: 3, SuccessThreshold: 2, FailureThreshold: 1})
	if d != 2*time.Second || p != time.Second || to != 3*time.Second || s != 2 || f != 1 {
		t.Errorf("set = %v %v %v %d %d", d, p, to, s, f)
	}
}
