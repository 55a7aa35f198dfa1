package observe_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/members"
	"github.com/loadstone-lb/loadstone/speaker/observe"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
)

func TestBuildServices(t *testing.T) {
	c := observetest.New().Service("default", "web", "n1", observetest.IP4)
	// Not ours: another class, not a LoadBalancer, no IP yet.
	other := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "other"},
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: ptr.To("example.com/lb")},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.20"}}}}}
	cip := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cip"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}
	pending := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pending"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	c.Lists.Services = append(c.Lists.Services, other, cip, pending)
	// A second slice for web: one ready endpoint on n2, one not ready on n3, an IPv4-mapped
	// duplicate of the LB IP in the status.
	c.Lists.Services[0].Status.LoadBalancer.Ingress = append(c.Lists.Services[0].Status.LoadBalancer.Ingress,
		corev1.LoadBalancerIngress{IP: "::ffff:203.0.113.10"})
	c.Lists.EndpointSlices = append(c.Lists.EndpointSlices, discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-2", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		Endpoints: []discoveryv1.Endpoint{
			{NodeName: ptr.To("n2"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{NodeName: ptr.To("n2")}, // readiness unknown counts as ready
			{NodeName: ptr.To("n3"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		}})
	s := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	web := types.NamespacedName{Namespace: "default", Name: "web"}
	if diff := cmp.Diff([]types.NamespacedName{web}, s.Keys); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	got := s.Services[web]
	if diff := cmp.Diff(map[string]bool{"n1": true, "n2": true}, got.ReadyNodes); diff != "" {
		t.Errorf("ready nodes (-want +got):\n%s", diff)
	}
	if len(got.IPs) != 1 || got.IPs[0] != observetest.IP4 || !got.HasReadyEndpoint || got.UID != "uid-default-web" {
		t.Errorf("service %+v", got)
	}
	if l2 := s.L2(s.Alive); len(l2.Services) != 1 || l2.Self != "n1" || l2.ExcludeLabel != v1beta1.LabelExcludeFromLB {
		t.Errorf("L2 input %+v", l2)
	}
}

func TestBuildMembershipAndCluster(t *testing.T) {
	c := observetest.New().Terminating("gone").Publish("n2", "default", "web", observetest.IP4)
	s := c.Snapshot("n1", observetest.View{Alive: []string{"n1", "n2"}, Arrivals: 7})
	if !s.Alive["n2"] || s.Alive["n3"] || s.Arrivals != 7 || s.Degraded {
		t.Errorf("membership %+v", s.Membership)
	}
	if s.MACOwners[observetest.MAC("n3").String()] != "n3" {
		t.Errorf("MAC owners %v", s.MACOwners)
	}
	if !s.Terminating["gone"] || len(s.Terminating) != 1 {
		t.Errorf("terminating %v", s.Terminating)
	}
	if s.Advertisements["v4"] != "uid-ad-v4" {
		t.Errorf("advertisements %v", s.Advertisements)
	}
	if got := s.Publishers(types.NamespacedName{Namespace: "default", Name: "web"}, observetest.IP4); len(got) != 1 || got[0] != "n2" {
		t.Errorf("publishers %v", got)
	}
	if s.Config == nil || len(s.Config.Pools) != 2 || len(s.Nodes) != 4 || !s.Nodes[0].Ready {
		t.Errorf("config %+v nodes %+v", s.Config, s.Nodes)
	}
	// Degraded: no alive set, whatever the reading held.
	d := observe.Build(observe.Input{Self: "n1", Membership: observe.Membership{Degraded: true, Alive: map[string]bool{"n2": true},
		Members: map[string]members.Member{"n2": {MACs: []net.HardwareAddr{observetest.MAC("n2")}}}}})
	if len(d.Alive) != 0 || !d.Degraded {
		t.Errorf("degraded alive %v", d.Alive)
	}
}

func TestBuildBGP(t *testing.T) {
	c := observetest.New().
		Service("default", "web", "n1", observetest.IP4).Endpoints("default", "web", "n1", 2, 1).Endpoints("default", "web", "n3", 0, 2).
		Address("n1", netip.MustParseAddr("2001:db8::11"), netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")).
		Address("n2", netip.MustParseAddr("192.0.2.22")).
		BFDProfile("fast", v1beta1.BFDProfileSpec{}).
		Community("c", v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "edge", Value: "65000:1"}}}).
		Peer("a", v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "192.0.2.1", BFDProfile: "fast",
			PasswordSecret: &v1beta1.SecretKeyReference{Namespace: "loadstone-system", Name: "bgp"}}).
		Peer("b", v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "192.0.2.2",
			PasswordSecret: &v1beta1.SecretKeyReference{Namespace: "loadstone-system", Name: "bgp", Key: "other"}}).
		Peer("c", v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "192.0.2.3",
			PasswordSecret: &v1beta1.SecretKeyReference{Namespace: "loadstone-system", Name: "gone"}}).
		BGPAdvertisement("all", v1beta1.BGPAdvertisementSpec{Communities: []string{"edge"}}).
		Secret("loadstone-system", "bgp", map[string]string{"password": "pw", "unused": "x"}).
		Secret("loadstone-system", "unrelated", map[string]string{"password": "no"})
	// The node's other address types do not count.
	c.Lists.Nodes[0].Status.Addresses = append([]corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "198.51.100.1"}}, c.Lists.Nodes[0].Status.Addresses...)
	s := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})

	if len(s.ConfigProblems) != 0 {
		t.Fatalf("config problems %v", s.ConfigProblems)
	}
	if len(s.Config.BGPPeers) != 3 || s.Config.BGPAdvertisements["all"] == nil || s.Config.BFDProfiles["fast"] == nil ||
		s.Config.Communities["edge"] != (model.CommunityValue{Standard: 65000<<16 | 1}) {
		t.Errorf("config %+v", s.Config)
	}
	wantSecrets := map[model.SecretRef][]byte{{Namespace: "loadstone-system", Name: "bgp", Key: "password"}: []byte("pw")}
	if diff := cmp.Diff(wantSecrets, s.Secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	if s.SelfIPv4 != netip.MustParseAddr("192.0.2.11") || s.SelfIPv6 != netip.MustParseAddr("2001:db8::11") {
		t.Errorf("self addresses %s %s", s.SelfIPv4, s.SelfIPv6)
	}
	web := s.Services[types.NamespacedName{Namespace: "default", Name: "web"}]
	if diff := cmp.Diff(map[string]int{"n1": 3}, web.ReadyCounts); diff != "" {
		t.Errorf("ready counts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]bool{"n1": true}, web.ReadyNodes); diff != "" {
		t.Errorf("ready nodes (-want +got):\n%s", diff)
	}
	// Another node sees its own addresses; a node without any has none.
	if s2 := c.Snapshot("n2", observetest.View{}); s2.SelfIPv4 != netip.MustParseAddr("192.0.2.22") || s2.SelfIPv6.IsValid() {
		t.Errorf("n2 addresses %s %s", s2.SelfIPv4, s2.SelfIPv6)
	}
	if s3 := c.Snapshot("n3", observetest.View{}); s3.SelfIPv4.IsValid() || s3.SelfIPv6.IsValid() {
		t.Errorf("n3 addresses %s %s", s3.SelfIPv4, s3.SelfIPv6)
	}
}
