package ipam

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
)

// pool builds a model.Pool from "cidr" or "first-last" strings (in address order).
func pool(name string, addrs ...string) *model.Pool {
	p := &model.Pool{Name: name, AutoAssign: true}
	for _, s := range addrs {
		if a, b, ok := strings.Cut(s, "-"); ok {
			p.Ranges = append(p.Ranges, model.Range{First: netip.MustParseAddr(a), Last: netip.MustParseAddr(b)})
			continue
		}
		pf := netip.MustParsePrefix(s).Masked()
		p.Ranges = append(p.Ranges, model.Range{First: pf.Addr(), Last: lastOf(pf)})
		p.CIDRs = append(p.CIDRs, pf) // as model.Build records a CIDR entry
	}
	return p
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func manual(p *model.Pool) *model.Pool { p.AutoAssign = false; return p }
func avoid(p *model.Pool) *model.Pool  { p.AvoidBuggyIPs = true; return p }
func prio(p *model.Pool, n int, namespaces ...string) *model.Pool {
	p.Allocation = &model.ServiceAllocation{Priority: n, Namespaces: namespaces}
	return p
}
func svcSel(p *model.Pool, sel string) *model.Pool {
	if p.Allocation == nil {
		p.Allocation = &model.ServiceAllocation{}
	}
	s, err := labels.Parse(sel)
	if err != nil {
		panic(err)
	}
	p.Allocation.ServiceSelectors = append(p.Allocation.ServiceSelectors, s)
	return p
}
func nsSel(p *model.Pool, sel string) *model.Pool {
	if p.Allocation == nil {
		p.Allocation = &model.ServiceAllocation{}
	}
	s, err := labels.Parse(sel)
	if err != nil {
		panic(err)
	}
	p.Allocation.NamespaceSelectors = append(p.Allocation.NamespaceSelectors, s)
	return p
}

func nn(s string) types.NamespacedName {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return types.NamespacedName{Namespace: "default", Name: s}
	}
	return types.NamespacedName{Namespace: ns, Name: name}
}

type opt func(*Request)

func req(name string, opts ...opt) Request {
	r := Request{Service: nn(name), Families: []Family{IPv4}, Ports: []Port{{corev1.ProtocolTCP, 80}}}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func v6() opt { return func(r *Request) { r.Families = []Family{IPv6} } }
func dual(p Policy, fams ...Family) opt {
	return func(r *Request) { r.Policy, r.Families = p, fams }
}
func ips(s ...string) opt {
	return func(r *Request) {
		for _, x := range s {
			r.IPs = append(r.IPs, netip.MustParseAddr(x))
		}
	}
}
func inPool(p string) opt { return func(r *Request) { r.Pool = p } }
func key(k string) opt    { return func(r *Request) { r.SharingKey = k } }
func local(sel string) opt {
	return func(r *Request) { r.LocalTraffic = true; r.Selector = map[string]string{"app": sel} }
}
func ports(ps ...int32) opt {
	return func(r *Request) {
		r.Ports = nil
		for _, p := range ps {
			r.Ports = append(r.Ports, Port{corev1.ProtocolTCP, p})
		}
	}
}
func udp(p int32) opt {
	return func(r *Request) { r.Ports = append(r.Ports, Port{corev1.ProtocolUDP, p}) }
}
func lbl(k, v string) opt {
	return func(r *Request) {
		if r.Labels == nil {
			r.Labels = map[string]string{}
		}
		r.Labels[k] = v
	}
}
func nsLbl(k, v string) opt {
	return func(r *Request) {
		if r.NamespaceLabels == nil {
			r.NamespaceLabels = map[string]string{}
		}
		r.NamespaceLabels[k] = v
	}
}

func mustSet(t testing.TB, a *Allocator, pools ...*model.Pool) {
	t.Helper()
	if _, err := a.SetPools(pools); err != nil {
		t.Fatal(err)
	}
}

func strs(al Allocation) []string {
	var out []string
	for _, ip := range al.IPs {
		out = append(out, ip.String())
	}
	return out
}

type netipAddr = netip.Addr

func parse(s string) netip.Addr { return netip.MustParseAddr(s) }
