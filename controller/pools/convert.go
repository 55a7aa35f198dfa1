package pools

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// convert checks one IPAddressPool on its own and returns its model form.
func convert(p *v1beta1.IPAddressPool) (*model.Pool, error) {
	out := &model.Pool{
		Name:          p.Name,
		AutoAssign:    p.Spec.AutoAssign == nil || *p.Spec.AutoAssign,
		AvoidBuggyIPs: p.Spec.AvoidBuggyIPs,
	}
	for _, s := range p.Spec.Addresses {
		r, err := parseRange(s)
		if err != nil {
			return nil, err
		}
		out.Ranges = append(out.Ranges, r)
	}
	if len(out.Ranges) == 0 {
		return nil, fmt.Errorf("no addresses")
	}
	slices.SortFunc(out.Ranges, func(a, b model.Range) int { return a.First.Compare(b.First) })
	for i := 1; i < len(out.Ranges); i++ {
		if !out.Ranges[i-1].Last.Less(out.Ranges[i].First) && out.Ranges[i-1].First.Is4() == out.Ranges[i].First.Is4() {
			return nil, fmt.Errorf("addresses overlap within the pool at %s", out.Ranges[i].First)
		}
	}
	if sa := p.Spec.ServiceAllocation; sa != nil {
		m := &model.ServiceAllocation{Priority: sa.Priority, Namespaces: sa.Namespaces}
		var err error
		if m.NamespaceSelectors, err = selectors(sa.NamespaceSelectors); err != nil {
			return nil, fmt.Errorf("serviceAllocation.namespaceSelectors: %w", err)
		}
		if m.ServiceSelectors, err = selectors(sa.ServiceSelectors); err != nil {
			return nil, fmt.Errorf("serviceAllocation.serviceSelectors: %w", err)
		}
		out.Allocation = m
	}
	return out, nil
}

func selectors(in []metav1.LabelSelector) ([]labels.Selector, error) {
	var out []labels.Selector
	for i := range in {
		s, err := metav1.LabelSelectorAsSelector(&in[i])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// parseRange parses "CIDR" or "first-last".
func parseRange(s string) (model.Range, error) {
	s = strings.TrimSpace(s)
	if a, b, ok := strings.Cut(s, "-"); ok {
		first, err1 := netip.ParseAddr(strings.TrimSpace(a))
		last, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil {
			return model.Range{}, fmt.Errorf("%q is not a range of two addresses", s)
		}
		first, last = first.Unmap(), last.Unmap()
		if first.Is4() != last.Is4() {
			return model.Range{}, fmt.Errorf("range %q mixes IPv4 and IPv6", s)
		}
		if last.Less(first) {
			return model.Range{}, fmt.Errorf("range %q is reversed", s)
		}
		return model.Range{First: first, Last: last}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return model.Range{}, fmt.Errorf("%q is neither a CIDR nor a range", s)
	}
	if p.Masked() != p {
		return model.Range{}, fmt.Errorf("%q has address bits set after the prefix length", s)
	}
	first := p.Addr()
	b := first.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	last, _ := netip.AddrFromSlice(b)
	return model.Range{First: first.Unmap(), Last: last.Unmap()}, nil
}

// overlaps reports the first range of p that overlaps one of q.
func overlaps(p, q *model.Pool) (netip.Addr, bool) {
	for _, a := range p.Ranges {
		for _, b := range q.Ranges {
			if a.First.Is4() == b.First.Is4() && !a.Last.Less(b.First) && !b.Last.Less(a.First) {
				if a.First.Less(b.First) {
					return b.First, true
				}
				return a.First, true
			}
		}
	}
	return netip.Addr{}, false
}
