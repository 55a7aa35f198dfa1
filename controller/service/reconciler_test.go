package service

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

func TestOurs(t *testing.T) {
	lb := func(class *string) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: class}}
	}
	for _, tc := range []struct {
		name         string
		svc          *corev1.Service
		requireClass bool
		want         bool
	}{
		{"no class", lb(nil), false, true},
		{"no class, class required", lb(nil), true, false},
		{"our class", lb(ptr.To(v1beta1.LoadBalancerClass)), false, true},
		{"our class, class required", lb(ptr.To(v1beta1.LoadBalancerClass)), true, true},
		{"other class", lb(ptr.To("example.com/lb")), false, false},
		{"ClusterIP", &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}, false, false},
		{"NodePort", &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Options{RequireClass: tc.requireClass})
			if got := r.Ours(tc.svc); got != tc.want {
				t.Fatalf("Ours = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSameIngress(t *testing.T) {
	vip, proxy := corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy
	in := func(ip string, mode *corev1.LoadBalancerIPMode) corev1.LoadBalancerIngress {
		return corev1.LoadBalancerIngress{IP: ip, IPMode: mode}
	}
	want := []corev1.LoadBalancerIngress{in("203.0.113.1", &vip)}
	for _, tc := range []struct {
		name string
		cur  []corev1.LoadBalancerIngress
		same bool
	}{
		{"equal", []corev1.LoadBalancerIngress{in("203.0.113.1", &vip)}, true},
		{"other IP", []corev1.LoadBalancerIngress{in("203.0.113.2", &vip)}, false},
		{"other mode", []corev1.LoadBalancerIngress{in("203.0.113.1", &proxy)}, false},
		{"no mode", []corev1.LoadBalancerIngress{in("203.0.113.1", nil)}, false},
		{"extra", []corev1.LoadBalancerIngress{in("203.0.113.1", &vip), in("203.0.113.2", &vip)}, false},
		{"hostname", []corev1.LoadBalancerIngress{{IP: "203.0.113.1", IPMode: &vip, Hostname: "x"}}, false},
		{"empty", nil, false},
	} {
		if got := sameIngress(tc.cur, want); got != tc.same {
			t.Errorf("%s: sameIngress = %v", tc.name, got)
		}
	}
}

func TestStatusPatch(t *testing.T) {
	vip := corev1.LoadBalancerIPModeVIP
	in := []corev1.LoadBalancerIngress{{IP: "203.0.113.1", IPMode: &vip}}
	for _, tc := range []struct {
		name    string
		ingress []corev1.LoadBalancerIngress
		pool    string
		hasPool bool
		want    string
	}{
		{"set", in, "a", false, `{"metadata":{"annotations":{"loadstone.io/allocated-from-pool":"a"}},"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.1","ipMode":"VIP"}]}}}`},
		{"clear", []corev1.LoadBalancerIngress{}, "", true, `{"metadata":{"annotations":{"loadstone.io/allocated-from-pool":null}},"status":{"loadBalancer":{"ingress":[]}}}`},
		{"nothing to remove", []corev1.LoadBalancerIngress{}, "", false, `{"status":{"loadBalancer":{"ingress":[]}}}`},
	} {
		got, err := json.Marshal(statusPatch(tc.ingress, tc.pool, tc.hasPool))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
