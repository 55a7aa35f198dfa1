package observe_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/dataplane/plan"
	"github.com/loadstone-lb/loadstone/speaker/observe"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
)

func slice(name, svc string, at discoveryv1.AddressType, ports map[string]int32, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	es := discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, AddressType: at, Endpoints: eps}
	for n, p := range ports {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr.To(n), Port: ptr.To(p)})
	}
	return es
}

func TestBuildDataplane(t *testing.T) {
	ip6 := netip.MustParseAddr("2001:db8:100::10")
	c := observetest.New().Service("default", "web", "", observetest.IP4, ip6).Mode("default", "web", "pods").
		Address("n1", netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8:1::11")).
		Address("n2", netip.MustParseAddr("192.0.2.12"))
	web := &c.Lists.Services[0]
	web.Spec.Ports = []corev1.ServicePort{
		{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080, TargetPort: intstr.FromString("web")},
		{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(5353)},
	}
	web.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24", " 2001:db8:2::1/64", "bogus"}
	web.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	web.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	ports := map[string]int32{"http": 8080, "dns": 5353}
	c.Lists.EndpointSlices = append(c.Lists.EndpointSlices,
		slice("web-a", "web", discoveryv1.AddressTypeIPv4, ports,
			discoveryv1.Endpoint{Addresses: []string{"198.18.1.5"}, NodeName: ptr.To("n1")}, // conditions unset: ready, serving
			discoveryv1.Endpoint{Addresses: []string{"198.18.2.5"}, NodeName: ptr.To("n2"),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}},
			discoveryv1.Endpoint{Addresses: []string{"198.18.3.5"}}), // no node
		// The same pod again in a later slice (moving between slices): kept once, from web-a.
		slice("web-b", "web", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 9999},
			discoveryv1.Endpoint{Addresses: []string{"198.18.1.5"}, NodeName: ptr.To("n1")}),
		slice("web-c", "web", discoveryv1.AddressTypeIPv6, ports,
			discoveryv1.Endpoint{Addresses: []string{"2001:db8:1000::5"}, NodeName: ptr.To("n1"),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}}),
		slice("web-d", "web", discoveryv1.AddressTypeFQDN, ports, discoveryv1.Endpoint{Addresses: []string{"web.example"}}),
	)
	s := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	got := s.Services[types.NamespacedName{Namespace: "default", Name: "web"}]
	want := observe.Dataplane{
		Modes: map[netip.Addr]plan.Mode{observetest.IP4: plan.ModePods, ip6: plan.ModePods},
		Ports: []observe.Port{
			{Name: "http", Protocol: plan.TCP, Port: 80, NodePort: 30080, TargetPort: intstr.FromString("web")},
			{Name: "dns", Protocol: plan.UDP, Port: 53, TargetPort: intstr.FromInt32(5353)},
		},
		SourceRanges:     []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:2::/64")},
		ClientIPAffinity: true,
		Endpoints: []plan.Endpoint{
			{Addr: netip.MustParseAddr("198.18.1.5"), Ports: map[string]uint16{"http": 8080, "dns": 5353}, Node: "n1", Ready: true, Serving: true},
			{Addr: netip.MustParseAddr("198.18.2.5"), Ports: map[string]uint16{"http": 8080, "dns": 5353}, Node: "n2", Serving: true, Terminating: true},
			{Addr: netip.MustParseAddr("198.18.3.5"), Ports: map[string]uint16{"http": 8080, "dns": 5353}, Ready: true, Serving: true},
			{Addr: netip.MustParseAddr("2001:db8:1000::5"), Ports: map[string]uint16{"http": 8080, "dns": 5353}, Node: "n1", Ready: true, Serving: true},
		},
	}
	if diff := cmp.Diff(want, got.Dataplane, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}), cmp.Comparer(func(a, b intstr.IntOrString) bool { return a == b })); diff != "" {
		t.Errorf("dataplane (-want +got):\n%s", diff)
	}
	if !got.LocalTraffic {
		t.Error("externalTrafficPolicy Local not seen")
	}
	wantAddrs := map[string][]netip.Addr{
		"n1": {netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8:1::11")},
		"n2": {netip.MustParseAddr("192.0.2.12")},
	}
	if diff := cmp.Diff(wantAddrs, s.NodeAddrs, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("node addresses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[netip.Addr]bool{observetest.IP4: true, ip6: true}, s.Gated, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("gated (-want +got):\n%s", diff)
	}
	if !s.DataplaneUsed() {
		t.Error("DataplaneUsed is false with a Service in mode pods")
	}
}

func TestBuildDataplaneMode(t *testing.T) {
	proxy, vip := corev1.LoadBalancerIPModeProxy, corev1.LoadBalancerIPModeVIP
	for _, tc := range []struct {
		name       string
		annotation string // "" : no annotation
		poolMode   v1beta1.DataplaneMode
		ipMode     *corev1.LoadBalancerIPMode
		want       plan.Mode
		wantErr    string
	}{
		{name: "default is pods", want: plan.ModePods},
		{name: "pods", annotation: "pods", want: plan.ModePods},
		{name: "nodeport", annotation: "nodeport", want: plan.ModeNodePort},
		{name: "off", annotation: "off", want: plan.ModeOff},
		{name: "pool mode", poolMode: v1beta1.DataplaneModeNodePort, want: plan.ModeNodePort},
		{name: "annotation over pool", annotation: "off", poolMode: v1beta1.DataplaneModePods, want: plan.ModeOff},
		{name: "invalid annotation, ipMode VIP: off", annotation: "ebpf", poolMode: v1beta1.DataplaneModePods, ipMode: &vip,
			want: plan.ModeOff, wantErr: "not one of pods"},
		{name: "invalid annotation, ipMode Proxy: the pool's mode", annotation: "ebpf", poolMode: v1beta1.DataplaneModeNodePort,
			ipMode: &proxy, want: plan.ModeNodePort, wantErr: "not one of pods"},
		{name: "invalid annotation, ipMode Proxy, pool off: pods", annotation: "ebpf", ipMode: &proxy, want: plan.ModePods,
			wantErr: "not one of pods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := observetest.New().Service("default", "web", "n1", observetest.IP4)
			if tc.annotation != "" {
				c.Mode("default", "web", tc.annotation)
			}
			c.Lists.Pools[0].Spec.DataplaneMode = tc.poolMode
			c.Lists.Services[0].Status.LoadBalancer.Ingress[0].IPMode = tc.ipMode
			s := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
			d := s.Services[types.NamespacedName{Namespace: "default", Name: "web"}].Dataplane
			if got := d.Modes[observetest.IP4]; got != tc.want {
				t.Errorf("mode %s, want %s", got, tc.want)
			}
			if (tc.wantErr == "") != (d.ModeError == "") || !strings.Contains(d.ModeError, tc.wantErr) {
				t.Errorf("mode error %q, want one containing %q", d.ModeError, tc.wantErr)
			}
			if s.Gated[observetest.IP4] != (tc.want != plan.ModeOff) || s.DataplaneUsed() != (tc.want != plan.ModeOff) || d.Serves() != (tc.want != plan.ModeOff) {
				t.Errorf("gated %v, used %v for mode %s", s.Gated, s.DataplaneUsed(), tc.want)
			}
		})
	}
}

// Each LB IP has the mode of its own pool: a dual-stack Service can be served by the
// dataplane on one family and by kube-proxy on the other.
func TestBuildDataplaneModePerIP(t *testing.T) {
	ip6 := netip.MustParseAddr("2001:db8:100::10")
	c := observetest.New().Service("default", "web", "n1", observetest.IP4, ip6)
	c.Lists.Pools[0].Spec.DataplaneMode = v1beta1.DataplaneModeOff
	c.Lists.Pools[1].Spec.DataplaneMode = v1beta1.DataplaneModePods
	s := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	d := s.Services[types.NamespacedName{Namespace: "default", Name: "web"}].Dataplane
	if diff := cmp.Diff(map[netip.Addr]plan.Mode{observetest.IP4: plan.ModeOff, ip6: plan.ModePods}, d.Modes, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("modes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[netip.Addr]bool{ip6: true}, s.Gated, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("gated (-want +got):\n%s", diff)
	}
}
