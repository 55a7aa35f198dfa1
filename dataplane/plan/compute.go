package plan

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/loadstone-lb/loadstone/dataplane/maglev"
)

// Compute works out the desired nftables content for one snapshot. It is pure: the same
// Input gives the same Plan on every node, except for what depends on Input.Node (Local
// endpoints, Remote). The Plan is always complete for every Service that could be
// planned; the error joins the problems of the others (a frontend claimed by two
// Services, a Maglev table that cannot be built), which are left out of the Plan.
func Compute(in Input) (Plan, error) {
	p := Plan{
		Frontends:  map[Frontend]Dispatch{},
		Tables:     map[uint32][]netip.AddrPort{},
		Reject:     map[Frontend]bool{},
		Ranged:     map[Frontend]bool{},
		Allowed:    map[Range]bool{},
		Masquerade: map[Frontend]bool{},
		Remote:     map[netip.Addr]bool{},
		IDs:        map[Key]uint32{},
	}
	svcs := slices.Clone(in.Services)
	slices.SortFunc(svcs, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Name.Namespace, b.Name.Namespace), cmp.Compare(a.Name.Name, b.Name.Name))
	})
	var errs []error
	claimed := map[Frontend]Key{}
	type pending struct {
		key       Key
		frontends []Frontend
		backends  []backend
		affinity  bool
	}
	var tables []pending
	for _, s := range svcs {
		if s.Mode == ModeOff {
			continue
		}
		for _, port := range s.Ports {
			for _, v6 := range []bool{false, true} {
				key := Key{Service: s.Name, Protocol: port.Protocol, Port: port.Port, IPv6: v6}
				var fes []Frontend
				for _, ip := range s.LBIPs {
					ip = ip.Unmap()
					if !ip.IsValid() || ip.Is6() != v6 {
						continue
					}
					f := Frontend{Addr: ip, Protocol: port.Protocol, Port: port.Port}
					if other, dup := claimed[f]; dup {
						if other.Service != s.Name {
							errs = append(errs, fmt.Errorf("service %s: %s %s:%d already served for %s", s.Name, port.Protocol, ip, port.Port, other.Service))
						}
						continue
					}
					claimed[f] = key
					fes = append(fes, f)
				}
				if len(fes) == 0 {
					continue
				}
				slices.SortFunc(fes, compareFrontend)
				if len(s.SourceRanges) > 0 {
					for _, f := range fes {
						p.Ranged[f] = true
						for _, r := range s.SourceRanges {
							if r = unmapPrefix(r); r.IsValid() && r.Addr().Is6() == v6 {
								p.Allowed[Range{Frontend: f, Source: r}] = true
							}
						}
					}
				}
				bs := backends(in, s, port, v6)
				if len(bs) == 0 {
					for _, f := range fes {
						p.Reject[f] = true
					}
					continue
				}
				tables = append(tables, pending{key: key, frontends: fes, backends: bs, affinity: s.ClientIPAffinity})
				masq := s.TrafficPolicy == PolicyCluster || s.Mode == ModeNodePort
				for _, f := range fes {
					if masq {
						p.Masquerade[f] = true
					}
				}
				for _, b := range bs {
					if b.remote {
						p.Remote[b.addr.Addr()] = true
					}
				}
			}
		}
	}
	ids := assignIDs(in.IDs, tables, func(t pending) Key { return t.key })
	for _, t := range tables {
		id := ids[t.key]
		tab, err := build(t.backends, in.MaglevMinFactor, in.MaglevMax)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s %s/%d: %w", t.key.Service, t.key.Protocol, t.key.Port, err))
			for _, f := range t.frontends {
				p.Reject[f] = true
			}
			continue
		}
		p.IDs[t.key] = id
		p.Tables[id] = tab
		for _, f := range t.frontends {
			p.Frontends[f] = Dispatch{ID: id, Size: len(tab), Affinity: t.affinity}
		}
	}
	return p, errors.Join(errs...)
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix into its IPv4 form and masks it; an
// invalid or unconvertible prefix comes back invalid.
func unmapPrefix(r netip.Prefix) netip.Prefix {
	if !r.IsValid() {
		return netip.Prefix{}
	}
	if r.Addr().Is4In6() {
		if r.Bits() < 96 {
			return netip.Prefix{}
		}
		r = netip.PrefixFrom(r.Addr().Unmap(), r.Bits()-96)
	}
	return r.Masked()
}

func compareFrontend(a, b Frontend) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

type backend struct {
	addr   netip.AddrPort
	remote bool
}

// backends chooses a port's backends in one family. Pods mode: endpoints on nodes that
// are alive (this node always is), only this node's with Local; the ready ones, or if
// none is ready the serving-terminating ones (as kube-proxy does). NodePort mode: the
// NodePort on an address of every other node that has such endpoints, and this node's own
// endpoints directly: a DNAT to this node's own NodePort would end there, since the
// connection is NATed once, before kube-proxy's NodePort rule could see it (so this
// node's table differs from the others' in those slots).
func backends(in Input, s Service, port Port, v6 bool) []backend {
	var ready, terminating []Endpoint
	for _, e := range s.Endpoints {
		a := e.Addr.Unmap()
		if !a.IsValid() || a.Is6() != v6 {
			continue
		}
		if _, ok := e.Ports[port.Name]; !ok && s.Mode == ModePods {
			continue
		}
		if e.Node != in.Node && !in.Alive[e.Node] {
			continue
		}
		if s.TrafficPolicy == PolicyLocal && s.Mode == ModePods && e.Node != in.Node {
			continue
		}
		switch {
		case e.Ready && !e.Terminating:
			ready = append(ready, e)
		case e.Serving && e.Terminating:
			terminating = append(terminating, e)
		}
	}
	use := ready
	if len(use) == 0 {
		use = terminating
	}
	seen := map[netip.AddrPort]bool{}
	var out []backend
	add := func(ap netip.AddrPort, node string) {
		if seen[ap] {
			return
		}
		seen[ap] = true
		out = append(out, backend{addr: ap, remote: node != in.Node})
	}
	for _, e := range use {
		switch s.Mode {
		case ModePods:
			add(netip.AddrPortFrom(e.Addr.Unmap(), e.Ports[port.Name]), e.Node)
		case ModeNodePort:
			if port.NodePort == 0 {
				continue
			}
			if e.Node == in.Node {
				if tp, ok := e.Ports[port.Name]; ok {
					add(netip.AddrPortFrom(e.Addr.Unmap(), tp), e.Node)
				}
				continue
			}
			for _, a := range in.NodeAddrs[e.Node] {
				if a = a.Unmap(); a.IsValid() && a.Is6() == v6 {
					add(netip.AddrPortFrom(a, port.NodePort), e.Node)
					break
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b backend) int { return a.addr.Compare(b.addr) })
	return out
}

// build sizes and fills the Maglev table; a backend's hash input is its addr:port, so
// every node computes the same table.
func build(bs []backend, minFactor, max int) ([]netip.AddrPort, error) {
	m, err := maglev.Size(len(bs), minFactor, max)
	if err != nil {
		return nil, err
	}
	mb := make([]maglev.Backend, len(bs))
	byID := make(map[string]netip.AddrPort, len(bs))
	for i, b := range bs {
		id := b.addr.String()
		mb[i] = maglev.Backend{ID: id}
		byID[id] = b.addr
	}
	t, err := maglev.Build(mb, m)
	if err != nil {
		return nil, err
	}
	idx := make([]netip.AddrPort, len(t.Backends))
	for k, b := range t.Backends {
		idx[k] = byID[b.ID]
	}
	out := make([]netip.AddrPort, len(t.Entries))
	for i, e := range t.Entries {
		out[i] = idx[e]
	}
	return out, nil
}

// assignIDs keeps the previous ID of every key that still has a table and gives new keys
// the smallest free IDs from 1, in key order, so the result depends only on its inputs.
func assignIDs[T any](prev map[Key]uint32, items []T, key func(T) Key) map[Key]uint32 {
	out := make(map[Key]uint32, len(items))
	used := map[uint32]bool{}
	var fresh []Key
	for _, it := range items {
		k := key(it)
		if id, ok := prev[k]; ok && id != 0 && !used[id] {
			out[k] = id
			used[id] = true
			continue
		}
		fresh = append(fresh, k)
	}
	slices.SortFunc(fresh, compareKey)
	next := uint32(1)
	for _, k := range fresh {
		for used[next] {
			next++
		}
		out[k] = next
		used[next] = true
	}
	return out
}

func compareKey(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Service.Namespace, b.Service.Namespace), cmp.Compare(a.Service.Name, b.Service.Name),
		cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port), cmpBool(a.IPv6, b.IPv6))
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
