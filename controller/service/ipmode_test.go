package service

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/ipam"
)

func TestIPModeOf(t *testing.T) {
	for m, want := range map[model.Mode]corev1.LoadBalancerIPMode{
		model.ModePods:     corev1.LoadBalancerIPModeProxy,
		model.ModeNodePort: corev1.LoadBalancerIPModeProxy,
		model.ModeOff:      corev1.LoadBalancerIPModeVIP,
	} {
		if got := IPModeOf(m); got != want {
			t.Errorf("IPModeOf(%q) = %s, want %s", m, got, want)
		}
	}
}

// TestIngressIPMode checks the ipMode of each ingress entry: from the pool of its IP and
// the Service's annotation, and, with an invalid annotation, the ipMode the Service has.
func TestIngressIPMode(t *testing.T) {
	const vip, proxy = corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy
	deflt := IPModeOf(model.DefaultDataplaneMode)
	r := New(Options{})
	if err := r.SetPools([]*model.Pool{
		{Name: "unset", Ranges: []model.Range{{First: netip.MustParseAddr("203.0.113.0"), Last: netip.MustParseAddr("203.0.113.7")}}},
		{Name: "pods", DataplaneMode: model.ModePods, Ranges: []model.Range{{First: netip.MustParseAddr("203.0.113.8"), Last: netip.MustParseAddr("203.0.113.15")}}},
		{Name: "np", DataplaneMode: model.ModeNodePort, Ranges: []model.Range{{First: netip.MustParseAddr("2001:db8:100::"), Last: netip.MustParseAddr("2001:db8:100::7")}}},
		{Name: "off", DataplaneMode: model.ModeOff, Ranges: []model.Range{{First: netip.MustParseAddr("203.0.113.16"), Last: netip.MustParseAddr("203.0.113.23")}}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	alloc := func(pairs ...string) ipam.Allocation {
		var al ipam.Allocation
		for i := 0; i+1 < len(pairs); i += 2 {
			al.IPs = append(al.IPs, netip.MustParseAddr(pairs[i]))
			al.Pools = append(al.Pools, pairs[i+1])
		}
		return al
	}
	svc := func(annotation string, status ...string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
		if annotation != "-" {
			s.Annotations[v1beta1.AnnotationDataplaneMode] = annotation
		}
		for i := 0; i+1 < len(status); i += 2 {
			in := corev1.LoadBalancerIngress{IP: status[i]}
			if status[i+1] != "" {
				m := corev1.LoadBalancerIPMode(status[i+1])
				in.IPMode = &m
			}
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, in)
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		al      ipam.Allocation
		svc     *corev1.Service
		want    []corev1.LoadBalancerIPMode
		wantErr string
	}{
		{"nothing held", alloc(), svc("-"), nil, ""},
		{"pool without the field: default", alloc("203.0.113.0", "unset"), svc("-"), []corev1.LoadBalancerIPMode{deflt}, ""},
		{"pods pool", alloc("203.0.113.8", "pods"), svc("-"), []corev1.LoadBalancerIPMode{proxy}, ""},
		{"nodeport pool", alloc("2001:db8:100::", "np"), svc("-"), []corev1.LoadBalancerIPMode{proxy}, ""},
		{"off pool", alloc("203.0.113.16", "off"), svc("-"), []corev1.LoadBalancerIPMode{vip}, ""},
		{"annotation off over a pods pool", alloc("203.0.113.8", "pods"), svc("off"), []corev1.LoadBalancerIPMode{vip}, ""},
		{"annotation pods over an off pool", alloc("203.0.113.16", "off"), svc("pods"), []corev1.LoadBalancerIPMode{proxy}, ""},
		{"annotation nodeport over the default", alloc("203.0.113.0", "unset"), svc("nodeport"), []corev1.LoadBalancerIPMode{proxy}, ""},
		{"per entry: each IP's pool", alloc("203.0.113.8", "pods", "203.0.113.17", "off"), svc("-"), []corev1.LoadBalancerIPMode{proxy, vip}, ""},
		{"per entry: the annotation covers both", alloc("203.0.113.8", "pods", "203.0.113.17", "off"), svc("nodeport"), []corev1.LoadBalancerIPMode{proxy, proxy}, ""},
		{"invalid annotation keeps the status's ipMode", alloc("203.0.113.8", "pods"), svc("bogus", "203.0.113.8", "VIP"),
			[]corev1.LoadBalancerIPMode{vip}, `"bogus" is not one of pods, nodeport or off`},
		{"invalid annotation keeps Proxy too", alloc("203.0.113.16", "off"), svc("bogus", "203.0.113.16", "Proxy"),
			[]corev1.LoadBalancerIPMode{proxy}, "bogus"},
		{"invalid annotation, new IP: the mode without the annotation", alloc("203.0.113.8", "pods"), svc("bogus"),
			[]corev1.LoadBalancerIPMode{proxy}, "bogus"},
		{"invalid annotation, status without ipMode", alloc("203.0.113.16", "off"), svc("bogus", "203.0.113.16", ""),
			[]corev1.LoadBalancerIPMode{vip}, "bogus"},
		{"invalid annotation, mixed", alloc("203.0.113.8", "pods", "203.0.113.17", "off"), svc("bogus", "203.0.113.17", "Proxy"),
			[]corev1.LoadBalancerIPMode{proxy, proxy}, "bogus"},
		{"an IP the status holds for another address does not count", alloc("203.0.113.8", "pods"), svc("bogus", "203.0.113.9", "VIP"),
			[]corev1.LoadBalancerIPMode{proxy}, "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := r.ingress(tc.al, tc.svc)
			var got []corev1.LoadBalancerIPMode
			for i, e := range in {
				if e.IP != tc.al.IPs[i].String() || e.IPMode == nil {
					t.Fatalf("entry %d: %+v", i, e)
				}
				got = append(got, *e.IPMode)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ipModes %v, want %v", got, tc.want)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
