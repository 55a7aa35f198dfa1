package nodeagent

import (
	"context"
	"errors"
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

// scriptedTarget is an exec probe target whose results follow script (then pass forever).
func scriptedTarget(script ...bool) probeTarget {
	i := 0
	return probeTarget{exec: func(context.Context, []string) error {
		defer func() { i++ }()
		if i < len(script) && !script[i] {
			return errors.New("probe failed")
		}
		return nil
	}}
}

func TestStartupAndLivenessThresholds(t *testing.T) {
	if testing.Short() {
		t.Skip("probes run once per second")
	}
	c := &corev1.Container{Name: "main"}
	probe := func(failure int32) *corev1.Probe {
		return &corev1.Probe{PeriodSeconds: 1, FailureThreshold: failure, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}}}
	}
	ctx := context.Background()
	var pr prober
	if !pr.untilPasses(ctx, scriptedTarget(false, false), c, probe(3)) {
		t.Error("startup probe: two failures then a pass, threshold 3: not started")
	}
	if pr.untilPasses(ctx, scriptedTarget(false, false), c, probe(2)) {
		t.Error("startup probe: two failures, threshold 2: started")
	}
	// Failures that are not consecutive do not kill.
	if !pr.untilFails(ctx, scriptedTarget(false, true, false, false), c, probe(2)) {
		t.Error("liveness probe: two failures in a row, threshold 2: not failed")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if pr.untilFails(cctx, scriptedTarget(false, false, false), c, probe(1)) {
		t.Error("liveness probe after its context ended: failed")
	}
}
