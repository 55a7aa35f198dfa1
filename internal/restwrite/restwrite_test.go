package restwrite

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

func TestPatchServiceStatus(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	w, err := New(env.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"metadata":{"annotations":{"x":"y"}},"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7","ipMode":"VIP"}]}}}`)
	if err := w.PatchServiceStatus(ctx, "default", "web", types.MergePatchType, patch); err != nil {
		t.Fatal(err)
	}
	var got corev1.Service
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(svc), &got); err != nil {
		t.Fatal(err)
	}
	if ing := got.Status.LoadBalancer.Ingress; len(ing) != 1 || ing[0].IP != "203.0.113.7" || got.Annotations["x"] != "y" {
		t.Errorf("status %+v annotations %v", got.Status, got.Annotations)
	}
	err = w.PatchServiceStatus(ctx, "default", "gone", types.MergePatchType, patch)
	if !apierrors.IsNotFound(err) {
		t.Errorf("patching a missing Service: %v, want NotFound", err)
	}
	if err := w.PatchServiceStatus(ctx, "default", "web", types.MergePatchType, []byte(`{`)); err == nil || apierrors.IsNotFound(err) {
		t.Errorf("a malformed patch: %v, want an error", err)
	}
}
