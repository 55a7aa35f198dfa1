package observetest

import (
	"fmt"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/members"
	"github.com/loadstone-lb/loadstone/speaker/observe"
)

// Addresses the election order above is known for.
var (
	IP4 = netip.MustParseAddr("203.0.113.10")
	IP6 = netip.MustParseAddr("2001:db8:100::10")
)

// MAC is node n's link-layer address in the member metadata (n = "n1".."n4").
func MAC(n string) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0, n[len(n)-1] - '0'} }

// Cluster is an editable cluster state.
type Cluster struct {
	Lists observe.Lists
	// Interfaces of the observing node (nil: not checked).
	Interfaces map[string]bool
}

// New returns the four-node cluster with pools v4 and v6, and an L2Advertisement for v4.
func New() *Cluster {
	c := &Cluster{}
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		c.Lists.Nodes = append(c.Lists.Nodes, corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}})
	}
	c.Lists.Pools = []v1beta1.IPAddressPool{
		{ObjectMeta: metav1.ObjectMeta{Name: "v4"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "v6"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"2001:db8:100::/64"}}},
	}
	c.Lists.L2Advertisements = []v1beta1.L2Advertisement{
		{ObjectMeta: metav1.ObjectMeta{Name: "v4", UID: "uid-ad-v4"}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"v4"}}},
	}
	return c
}

// AdvertiseV6 adds an L2Advertisement for the v6 pool.
func (c *Cluster) AdvertiseV6() *Cluster {
	c.Lists.L2Advertisements = append(c.Lists.L2Advertisements, v1beta1.L2Advertisement{
		ObjectMeta: metav1.ObjectMeta{Name: "v6", UID: "uid-ad-v6"}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"v6"}}})
	return c
}

// Service adds LoadBalancer Service ns/name with the LB IPs and one ready endpoint on
// node epNode ("" : no endpoint).
func (c *Cluster) Service(ns, name, epNode string, ips ...netip.Addr) *Cluster {
	svc := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name)},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	for _, ip := range ips {
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip.String()})
	}
	c.Lists.Services = append(c.Lists.Services, svc)
	if epNode != "" {
		c.Lists.EndpointSlices = append(c.Lists.EndpointSlices, discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"198.18.1.5"}, NodeName: ptr.To(epNode),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		})
	}
	return c
}

// Label sets a label on node n.
func (c *Cluster) Label(n, key, value string) *Cluster {
	for i := range c.Lists.Nodes {
		if c.Lists.Nodes[i].Name == n {
			if c.Lists.Nodes[i].Labels == nil {
				c.Lists.Nodes[i].Labels = map[string]string{}
			}
			c.Lists.Nodes[i].Labels[key] = value
		}
	}
	return c
}

// Terminating marks namespace ns as being deleted.
func (c *Cluster) Terminating(ns string) *Cluster {
	c.Lists.Namespaces = append(c.Lists.Namespaces, corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}})
	return c
}

// Publish adds node's ServiceL2Status for Service ns/name listing ips (as that speaker
// writes it), and returns the cluster.
func (c *Cluster) Publish(node, ns, name string, ips ...netip.Addr) *Cluster {
	st := v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-" + node,
		Labels: map[string]string{v1beta1.LabelStatusNode: node, v1beta1.LabelStatusService: name}},
		Status: v1beta1.ServiceL2StatusStatus{Node: node, ServiceName: name, Interfaces: []string{"eth0"}}}
	for _, ip := range ips {
		st.Status.IPs = append(st.Status.IPs, ip.String())
	}
	c.Lists.Statuses = append(c.Lists.Statuses, st)
	return c
}

// Unpublish removes node's ServiceL2Status for Service ns/name.
func (c *Cluster) Unpublish(node, ns, name string) *Cluster {
	var keep []v1beta1.ServiceL2Status
	for _, st := range c.Lists.Statuses {
		if st.Namespace != ns || st.Labels[v1beta1.LabelStatusService] != name || st.Labels[v1beta1.LabelStatusNode] != node {
			keep = append(keep, st)
		}
	}
	c.Lists.Statuses = keep
	return c
}

// View is one membership reading.
type View struct {
	Alive    []string
	Arrivals uint64
	Degraded bool
}

// Snapshot is what node self observes with view v. Every node publishes its MAC.
func (c *Cluster) Snapshot(self string, v View) *observe.Snapshot {
	in := observe.Input{Self: self, Lists: c.Lists, Interfaces: c.Interfaces,
		Membership: observe.Membership{Degraded: v.Degraded, Arrivals: v.Arrivals, Alive: map[string]bool{}, Members: map[string]members.Member{}}}
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		in.Members[n] = members.Member{Name: n, MACs: []net.HardwareAddr{MAC(n)}, State: members.StateDead}
	}
	for _, n := range v.Alive {
		in.Alive[n] = true
		in.Members[n] = members.Member{Name: n, MACs: []net.HardwareAddr{MAC(n)}, State: members.StateAlive}
	}
	s := observe.Build(in)
	return &s
}

// Local sets externalTrafficPolicy Local on Service ns/name.
func (c *Cluster) Local(ns, name string) *Cluster {
	for i := range c.Lists.Services {
		if s := &c.Lists.Services[i]; s.Namespace == ns && s.Name == name {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
	}
	return c
}

// Endpoints adds an EndpointSlice to Service ns/name with ready ready endpoints and
// notReady not-ready ones on node.
func (c *Cluster) Endpoints(ns, name, node string, ready, notReady int) *Cluster {
	es := discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns,
		Name: fmt.Sprintf("%s-%s-%d", name, node, len(c.Lists.EndpointSlices)), Labels: map[string]string{discoveryv1.LabelServiceName: name}}}
	for i := range ready + notReady {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("198.18.2.%d", i+1)},
			NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(i < ready)}})
	}
	c.Lists.EndpointSlices = append(c.Lists.EndpointSlices, es)
	return c
}

// Address sets node n's InternalIP addresses (status.addresses).
func (c *Cluster) Address(n string, ips ...netip.Addr) *Cluster {
	for i := range c.Lists.Nodes {
		if c.Lists.Nodes[i].Name == n {
			c.Lists.Nodes[i].Status.Addresses = nil
			for _, ip := range ips {
				c.Lists.Nodes[i].Status.Addresses = append(c.Lists.Nodes[i].Status.Addresses,
					corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.String()})
			}
		}
	}
	return c
}

// NotReady sets node n's Ready condition to False.
func (c *Cluster) NotReady(n string) *Cluster {
	for i := range c.Lists.Nodes {
		if c.Lists.Nodes[i].Name == n {
			c.Lists.Nodes[i].Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}
		}
	}
	return c
}

// Peer adds a BGPPeer.
func (c *Cluster) Peer(name string, spec v1beta1.BGPPeerSpec) *Cluster {
	c.Lists.BGPPeers = append(c.Lists.BGPPeers, v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-peer-" + name)}, Spec: spec})
	return c
}

// BGPAdvertisement adds a BGPAdvertisement.
func (c *Cluster) BGPAdvertisement(name string, spec v1beta1.BGPAdvertisementSpec) *Cluster {
	c.Lists.BGPAdvertisements = append(c.Lists.BGPAdvertisements, v1beta1.BGPAdvertisement{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-bgpad-" + name)}, Spec: spec})
	return c
}

// BFDProfile adds a BFDProfile.
func (c *Cluster) BFDProfile(name string, spec v1beta1.BFDProfileSpec) *Cluster {
	c.Lists.BFDProfiles = append(c.Lists.BFDProfiles, v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})
	return c
}

// Community adds a Community object.
func (c *Cluster) Community(name string, spec v1beta1.CommunitySpec) *Cluster {
	c.Lists.Communities = append(c.Lists.Communities, v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})
	return c
}

// Secret adds Secret ns/name with data.
func (c *Cluster) Secret(ns, name string, data map[string]string) *Cluster {
	sec := corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		sec.Data[k] = []byte(v)
	}
	c.Lists.Secrets = append(c.Lists.Secrets, sec)
	return c
}

// Mode sets the dataplane-mode annotation of Service ns/name ("pods", "nodeport", "off").
func (c *Cluster) Mode(ns, name, mode string) *Cluster {
	for i := range c.Lists.Services {
		if s := &c.Lists.Services[i]; s.Namespace == ns && s.Name == name {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[v1beta1.AnnotationDataplaneMode] = mode
		}
	}
	return c
}
