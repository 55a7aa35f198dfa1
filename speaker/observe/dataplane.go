package observe

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/dataplane/plan"
	"github.com/loadstone-lb/loadstone/speaker/announce"
)

// Dataplane is what the node dataplane (package dataplane/plan) needs of a Service.
type Dataplane struct {
	// Modes is the effective dataplane mode of each LB IP (api/model.DataplaneMode: the
	// Service's annotation, else the IP's pool's spec.dataplaneMode, else the default,
	// off). ModeError says why the annotation could not be read; each IP's mode then
	// follows the ipMode the controller left in the status (see dataplaneMode).
	Modes     map[netip.Addr]plan.Mode
	ModeError string
	Ports     []Port
	// SourceRanges is spec.loadBalancerSourceRanges (unparsable entries are skipped).
	SourceRanges []netip.Prefix
	// ClientIPAffinity is sessionAffinity: ClientIP.
	ClientIPAffinity bool
	// Endpoints are the Service's EndpointSlice endpoints: one per address, with the
	// target port of each Service port name and the conditions (unset ready and serving
	// count as true, unset terminating as false, as the EndpointSlice API defines). An
	// address listed by two slices (an endpoint moving between them) is kept once.
	Endpoints []plan.Endpoint
}

// Serves reports whether the dataplane serves some LB IP of the Service.
func (d *Dataplane) Serves() bool {
	for _, m := range d.Modes {
		if m != plan.ModeOff {
			return true
		}
	}
	return false
}

// Port is one Service port.
type Port struct {
	// Name is the port's name; EndpointSlices key their ports by it.
	Name     string
	Protocol plan.Protocol
	Port     uint16
	// NodePort is 0 when the Service allocates none.
	NodePort uint16
	// TargetPort is the port's targetPort (a number or a container port name); the
	// endpoints already carry it resolved per pod.
	TargetPort intstr.IntOrString
}

// dataplaneMode is the one place the speaker reads the dataplane mode of an LB IP:
// api/model.DataplaneMode for the IP's pool. When the annotation is invalid the
// controller keeps the ipMode the IP has, so the speaker follows that ipMode: Proxy (our
// dataplane must serve it) is the pool's mode when that serves, else pods; VIP or none
// is off.
func dataplaneMode(cfg *model.Config, pool string, annotations map[string]string, ipMode *corev1.LoadBalancerIPMode) (plan.Mode, error) {
	m, err := model.DataplaneMode(cfg, pool, annotations)
	if err != nil {
		switch {
		case ipMode == nil || *ipMode != corev1.LoadBalancerIPModeProxy:
			m = model.ModeOff
		case !m.Serves():
			m = model.ModePods
		}
	}
	switch m {
	case model.ModePods:
		return plan.ModePods, err
	case model.ModeNodePort:
		return plan.ModeNodePort, err
	}
	return plan.ModeOff, err
}

// dataplane converts what the dataplane needs of s, whose LB IPs are ips and whose
// allocated-from-pool annotation is pool.
func dataplane(cfg *model.Config, pool string, ips []netip.Addr, s *corev1.Service, slices []*discoveryv1.EndpointSlice) Dataplane {
	d := Dataplane{Modes: map[netip.Addr]plan.Mode{}}
	ipModes := map[netip.Addr]*corev1.LoadBalancerIPMode{}
	for _, ing := range s.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(ing.IP); err == nil {
			ipModes[ip.Unmap()] = ing.IPMode
		}
	}
	for _, ip := range ips {
		m, err := dataplaneMode(cfg, announce.PoolOf(cfg, pool, ip), s.Annotations, ipModes[ip])
		d.Modes[ip] = m
		if err != nil {
			d.ModeError = err.Error()
		}
	}
	for _, p := range s.Spec.Ports {
		proto, ok := protocol(p.Protocol)
		if !ok || p.Port <= 0 || p.Port > 65535 {
			continue
		}
		out := Port{Name: p.Name, Protocol: proto, Port: uint16(p.Port), TargetPort: p.TargetPort}
		if p.NodePort > 0 && p.NodePort <= 65535 {
			out.NodePort = uint16(p.NodePort)
		}
		d.Ports = append(d.Ports, out)
	}
	for _, r := range s.Spec.LoadBalancerSourceRanges {
		if pfx, err := netip.ParsePrefix(strings.TrimSpace(r)); err == nil {
			d.SourceRanges = append(d.SourceRanges, pfx.Masked())
		}
	}
	d.ClientIPAffinity = s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP
	d.Endpoints = endpoints(slices)
	return d
}

func protocol(p corev1.Protocol) (plan.Protocol, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return plan.TCP, true
	case corev1.ProtocolUDP:
		return plan.UDP, true
	case corev1.ProtocolSCTP:
		return plan.SCTP, true
	}
	return 0, false
}

// endpoints lists the slices' endpoints, sorted by address, each address once (the
// first slice by name wins).
func endpoints(list []*discoveryv1.EndpointSlice) []plan.Endpoint {
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	seen := map[netip.Addr]bool{}
	var out []plan.Endpoint
	for _, es := range list {
		if es.AddressType == discoveryv1.AddressTypeFQDN {
			continue // no address to forward to
		}
		ports := map[string]uint16{}
		for _, p := range es.Ports {
			if p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
				continue
			}
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			ports[name] = uint16(*p.Port)
		}
		for _, e := range es.Endpoints {
			c := e.Conditions
			ep := plan.Endpoint{Ports: ports,
				Ready:       c.Ready == nil || *c.Ready,
				Serving:     c.Serving == nil || *c.Serving,
				Terminating: c.Terminating != nil && *c.Terminating}
			if e.NodeName != nil {
				ep.Node = *e.NodeName
			}
			for _, a := range e.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || seen[ip.Unmap()] {
					continue
				}
				ip = ip.Unmap()
				seen[ip] = true
				ep.Addr = ip
				out = append(out, ep)
			}
		}
	}
	slices.SortFunc(out, func(a, b plan.Endpoint) int { return a.Addr.Compare(b.Addr) })
	return out
}

// nodeAddrs returns every InternalIP of n (both families), in status order.
func nodeAddrs(n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && !slices.Contains(out, ip.Unmap()) {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// DataplaneUsed reports whether any Service uses the dataplane (mode pods or nodeport).
func (s *Snapshot) DataplaneUsed() bool {
	return len(s.Gated) > 0
}
