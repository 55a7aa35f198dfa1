package observe

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/dataplane/plan"
	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/members"
)

// Lists are the informer cache's lists.
type Lists struct {
	Pools            []v1beta1.IPAddressPool
	L2Advertisements []v1beta1.L2Advertisement
	Services         []corev1.Service
	EndpointSlices   []discoveryv1.EndpointSlice
	Nodes            []corev1.Node
	Namespaces       []corev1.Namespace
	Statuses         []v1beta1.ServiceL2Status
	// BGP configuration.
	BGPPeers          []v1beta1.BGPPeer
	BGPAdvertisements []v1beta1.BGPAdvertisement
	BFDProfiles       []v1beta1.BFDProfile
	Communities       []v1beta1.Community
	// Secrets the speaker can read (those of its own namespace); only the keys BGPPeers'
	// passwordSecrets name are kept.
	Secrets []corev1.Secret
}

// Membership is one reading of the membership view.
type Membership struct {
	// Degraded: memberlist is not usable; Node readiness stands in for liveness.
	Degraded bool
	// Alive are the live members (ignored when Degraded).
	Alive map[string]bool
	// Members are all members known, with their published MACs.
	Members map[string]members.Member
	// Arrivals is the membership's arrival count (members.Members.Arrivals), read before
	// the lists, so every arrival it counts is in Alive.
	Arrivals uint64
}

// Input is everything Build needs.
type Input struct {
	Self string
	Lists
	Membership
	// Interfaces present on this node; nil skips the check (listing them failed).
	Interfaces map[string]bool
	// Previous is the last good configuration (model.Build keeps it for broken objects).
	Previous *model.Config
}

// Service is a LoadBalancer Service of ours with at least one LB IP.
type Service struct {
	announce.Service
	UID types.UID
	// ReadyCounts maps a node to the number of ready endpoints it holds (BGP's link
	// bandwidth weighs by it); it has the same keys as ReadyNodes.
	ReadyCounts map[string]int
	// Dataplane is what the node dataplane needs of the Service.
	Dataplane Dataplane
}

// Snapshot is the decide step's whole input. Nothing in it is shared with the caller's
// lists except the ServiceL2Status objects, which must not be modified.
type Snapshot struct {
	Self   string
	Config *model.Config
	// ConfigProblems are model.Build's findings (the controller reports them).
	ConfigProblems []model.Problem
	// Services by key, and Keys in order.
	Services map[types.NamespacedName]Service
	Keys     []types.NamespacedName
	Nodes    []announce.Node
	Membership
	Interfaces map[string]bool
	// Terminating namespaces accept no new objects.
	Terminating map[string]bool
	// Advertisements maps L2Advertisement names to UIDs (Events regard them).
	Advertisements map[string]types.UID
	// Peers maps BGPPeer names to UIDs (Events regard them).
	Peers map[string]types.UID
	// SelfUID is the UID of this node's Node object (empty when it is not in the lists);
	// BGPSessionStatus objects are owned by it.
	SelfUID types.UID
	// Statuses are the published ServiceL2Status objects of every node.
	Statuses []v1beta1.ServiceL2Status
	// MACOwners maps a MAC (its String form) to the member publishing it.
	MACOwners map[string]string
	// Secrets maps each passwordSecret that a BGPPeer in Config names to the bytes found
	// under its key; a Secret or key that is missing has no entry.
	Secrets map[model.SecretRef][]byte
	// SelfIPv4 and SelfIPv6 are this node's first InternalIP of each family in its Node's
	// status.addresses (zero when it has none).
	SelfIPv4, SelfIPv6 netip.Addr
	// NodeAddrs are every node's InternalIPs (both families), for the dataplane's
	// nodeport mode.
	NodeAddrs map[string][]netip.Addr
	// Gated are the LB IPs that some Service uses in dataplane mode pods or nodeport:
	// they are announced only once this node's dataplane carries them. IPs whose
	// Services are all in mode off (kube-proxy serves them) are not in it.
	Gated map[netip.Addr]bool
}

// Build turns the lists and readings into a Snapshot.
func Build(in Input) Snapshot {
	cfg, problems := model.Build(model.Snapshot{Pools: in.Pools, L2Advertisements: in.L2Advertisements,
		BGPPeers: in.BGPPeers, BGPAdvertisements: in.BGPAdvertisements, BFDProfiles: in.BFDProfiles,
		Communities: in.Communities, Previous: in.Previous})
	s := Snapshot{
		Self: in.Self, Config: cfg, ConfigProblems: problems,
		Services: map[types.NamespacedName]Service{}, Interfaces: in.Interfaces,
		Terminating: map[string]bool{}, Advertisements: map[string]types.UID{},
		Statuses: in.Statuses, MACOwners: map[string]string{},
		Secrets:   secrets(cfg, in.Secrets),
		NodeAddrs: map[string][]netip.Addr{}, Gated: map[netip.Addr]bool{},
	}
	s.Membership = in.Membership
	if s.Degraded || s.Alive == nil {
		s.Alive = map[string]bool{}
	}
	for name, m := range in.Members {
		for _, mac := range m.MACs {
			if cur, ok := s.MACOwners[mac.String()]; !ok || name < cur {
				s.MACOwners[mac.String()] = name
			}
		}
	}
	for _, n := range in.Nodes {
		s.Nodes = append(s.Nodes, announce.Node{Name: n.Name, Labels: n.Labels, Ready: nodeReady(&n)})
		if n.Name == in.Self {
			s.SelfIPv4, s.SelfIPv6 = internalIPs(&n)
		}
		if addrs := nodeAddrs(&n); len(addrs) > 0 {
			s.NodeAddrs[n.Name] = addrs
		}
	}
	slices.SortFunc(s.Nodes, func(a, b announce.Node) int { return strings.Compare(a.Name, b.Name) })
	for _, ns := range in.Namespaces {
		if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
			s.Terminating[ns.Name] = true
		}
	}
	for _, ad := range in.L2Advertisements {
		s.Advertisements[ad.Name] = ad.UID
	}
	s.Peers = map[string]types.UID{}
	for _, p := range in.BGPPeers {
		s.Peers[p.Name] = p.UID
	}
	for _, n := range in.Nodes {
		if n.Name == in.Self {
			s.SelfUID = n.UID
		}
	}
	eps := map[types.NamespacedName][]*discoveryv1.EndpointSlice{}
	for i := range in.EndpointSlices {
		es := &in.EndpointSlices[i]
		name := es.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		k := types.NamespacedName{Namespace: es.Namespace, Name: name}
		eps[k] = append(eps[k], es)
	}
	for i := range in.Services {
		svc, ok := service(&in.Services[i], eps)
		if !ok {
			continue
		}
		svc.Dataplane = dataplane(cfg, svc.Pool, svc.IPs, &in.Services[i], eps[svc.Key])
		for ip, m := range svc.Dataplane.Modes {
			if m != plan.ModeOff {
				s.Gated[ip] = true
			}
		}
		s.Services[svc.Key] = svc
		s.Keys = append(s.Keys, svc.Key)
	}
	slices.SortFunc(s.Keys, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	return s
}

// service converts a Service of ours with LB IPs; ok is false for any other Service.
func service(s *corev1.Service, eps map[types.NamespacedName][]*discoveryv1.EndpointSlice) (Service, bool) {
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return Service{}, false
	}
	if c := s.Spec.LoadBalancerClass; c != nil && *c != v1beta1.LoadBalancerClass {
		return Service{}, false
	}
	k := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	out := Service{UID: s.UID, Service: announce.Service{
		Key: k, Pool: s.Annotations[v1beta1.AnnotationAllocatedFromPool],
		LocalTraffic: s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
		ReadyNodes:   map[string]bool{},
	}, ReadyCounts: map[string]int{}}
	for _, ing := range s.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(ing.IP); err == nil && !slices.Contains(out.IPs, ip.Unmap()) {
			out.IPs = append(out.IPs, ip.Unmap())
		}
	}
	if len(out.IPs) == 0 {
		return Service{}, false
	}
	for _, es := range eps[k] {
		for _, e := range es.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			out.HasReadyEndpoint = true
			if e.NodeName != nil {
				out.ReadyNodes[*e.NodeName] = true
				out.ReadyCounts[*e.NodeName]++
			}
		}
	}
	return out, true
}

// L2 is the input of announce.Compute, with alive as the live members (the heal policy
// may keep a member alive a little longer than the membership view does).
func (s *Snapshot) L2(alive map[string]bool) announce.Snapshot {
	out := announce.Snapshot{Self: s.Self, Config: s.Config, Nodes: s.Nodes, Alive: alive,
		Degraded: s.Degraded, Interfaces: s.Interfaces, ExcludeLabel: v1beta1.LabelExcludeFromLB}
	for _, k := range s.Keys {
		out.Services = append(out.Services, s.Services[k].Service)
	}
	return out
}

// Publishers returns, for a Service, the nodes whose ServiceL2Status lists ip.
func (s *Snapshot) Publishers(k types.NamespacedName, ip netip.Addr) []string {
	var out []string
	for i := range s.Statuses {
		st := &s.Statuses[i]
		if st.Namespace != k.Namespace || st.Labels[v1beta1.LabelStatusService] != k.Name {
			continue
		}
		if slices.Contains(st.Status.IPs, ip.String()) {
			out = append(out, st.Labels[v1beta1.LabelStatusNode])
		}
	}
	slices.Sort(out)
	return out
}

// secrets resolves the passwordSecrets of the peers in cfg.
func secrets(cfg *model.Config, list []corev1.Secret) map[model.SecretRef][]byte {
	out := map[model.SecretRef][]byte{}
	want := map[types.NamespacedName][]model.SecretRef{}
	for _, p := range cfg.BGPPeers {
		if r := p.PasswordSecret; r != nil {
			k := types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
			want[k] = append(want[k], *r)
		}
	}
	for i := range list {
		sec := &list[i]
		for _, r := range want[types.NamespacedName{Namespace: sec.Namespace, Name: sec.Name}] {
			if v, ok := sec.Data[r.Key]; ok {
				out[r] = slices.Clone(v)
			} else if v, ok := sec.StringData[r.Key]; ok {
				out[r] = []byte(v)
			}
		}
	}
	return out
}

// internalIPs returns the node's first IPv4 and first IPv6 InternalIP.
func internalIPs(n *corev1.Node) (v4, v6 netip.Addr) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		switch {
		case ip.Is4() && !v4.IsValid():
			v4 = ip
		case ip.Is6() && !v6.IsValid():
			v6 = ip
		}
	}
	return v4, v6
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
