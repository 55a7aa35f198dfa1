package model

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// Snapshot is everything Build reads: all configuration objects, as listed from the API
// server, and the Config that the previous Build returned.
type Snapshot struct {
	Pools             []v1beta1.IPAddressPool
	L2Advertisements  []v1beta1.L2Advertisement
	BGPPeers          []v1beta1.BGPPeer
	BGPAdvertisements []v1beta1.BGPAdvertisement
	BFDProfiles       []v1beta1.BFDProfile
	Communities       []v1beta1.Community
	// Previous is the Config of the previous Build (nil at start). An object whose current
	// spec has problems keeps its version from here, if it has one.
	Previous *Config
}

// Build validates a Snapshot and returns the Config in force and the problems, per object.
//
// Every object is first checked on its own (the CRD's rules again, plus overlaps inside a
// pool and selector syntax), then against the others, in dependency order: BFD profiles and
// Community aliases, pools, peers, then advertisements. An object with any problem does not
// have its current spec in force: its version in Snapshot.Previous stays in force instead,
// when there is one and it still fits with the rest; otherwise the object is left out. So
// a typo never withdraws what is live. An object that was deleted is simply gone.
//
// Conflicts between objects (overlapping pools, duplicate peers, an alias defined twice)
// are blamed on one side, decided in this order:
//  1. an object whose version in force stays as it is wins over one that changed or is
//     new: its current spec equals its version in Previous, or its current spec is broken
//     and its version in Previous stays in force. So editing an object can never knock
//     out another one's addresses, peers or aliases that are live;
//  2. then the older object wins (metadata.creationTimestamp);
//  3. then the object whose name sorts first.
//
// Duplicate peers: two BGPPeers with the same peerAddress and peerPort are duplicates when
// they may open the session from the same node: one of them has no nodeSelectors (every
// node) or both have the same nodeSelectors. Peers with different node selectors are
// allowed (say, one per rack); Build cannot know whether some node matches both, since it
// does not see Nodes.
//
// References must resolve to an object in the returned Config: a pool, peer or BFD
// profile that does not exist, or exists but is not in force, is a problem of the object
// that names it, as is an unknown community alias. Every name that the returned Config
// holds therefore resolves within it.
//
// Build is pure and deterministic: the order of the Snapshot's slices does not matter.
func Build(s Snapshot) (*Config, []Problem) {
	b := &builder{
		prev: s.Previous,
		cfg: &Config{
			Pools:             map[string]*Pool{},
			L2Advertisements:  map[string]*L2Advertisement{},
			BGPPeers:          map[string]*BGPPeer{},
			BGPAdvertisements: map[string]*BGPAdvertisement{},
			BFDProfiles:       map[string]*BFDProfile{},
			Communities:       map[string]CommunityValue{},
			CommunityOwners:   map[string]string{},
		},
	}
	if b.prev == nil {
		b.prev = &Config{}
	}
	b.minBits = map[string][2]minPrefix{}
	b.bfdProfiles(s.BFDProfiles)
	b.communities(s.Communities)
	b.pools(s.Pools)
	b.peers(s.BGPPeers, s.BFDProfiles)
	poolLabels := map[string]labels.Set{}
	for i := range s.Pools {
		poolLabels[s.Pools[i].Name] = s.Pools[i].Labels
	}
	existing := map[string]bool{}
	for i := range s.Pools {
		existing[s.Pools[i].Name] = true
	}
	existingPeers := map[string]bool{}
	for i := range s.BGPPeers {
		existingPeers[s.BGPPeers[i].Name] = true
	}
	b.l2Advertisements(s.L2Advertisements, poolLabels, existing)
	b.bgpAdvertisements(s.BGPAdvertisements, poolLabels, existing, existingPeers)
	slices.SortStableFunc(b.problems, func(a, c Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, c.Kind), cmp.Compare(a.Name, c.Name))
	})
	return b.cfg, b.problems
}

type builder struct {
	prev     *Config
	cfg      *Config
	problems []Problem
	// minBits holds, per pool in force, the shortest prefix length among its IPv4 and its
	// IPv6 prefixes (with the prefix), for the aggregation length check.
	minBits map[string][2]minPrefix
	// allPools is the sorted names of the pools in force, once they are decided.
	allPools []string
}

type minPrefix struct {
	bits   int          // the shortest prefix length
	prefix netip.Prefix // a prefix of that length
	ok     bool         // the pool has addresses of the family
}

func minPrefixBits(p *Pool) [2]minPrefix {
	var out [2]minPrefix
	for _, r := range p.Ranges {
		fam := 0
		if r.First.Is6() {
			fam = 1
		}
		for _, pfx := range r.Prefixes() {
			if !out[fam].ok || pfx.Bits() < out[fam].bits {
				out[fam] = minPrefix{bits: pfx.Bits(), prefix: pfx, ok: true}
			}
		}
	}
	return out
}

// candidate is one object in conflict-resolution order.
type candidate[T any] struct {
	name      string
	meta      metav1.ObjectMeta
	current   T    // the current spec converted; valid only when ok
	ok        bool // the current spec has no problem of its own
	unchanged bool // ok and equal to its version in Previous
	hasPrev   bool // it has a version in Previous
}

// keeps reports whether the version in force stays as it is: the object is unchanged, or
// broken with a last good version to fall back to. Such objects are placed first, so that
// a change elsewhere can never push out what is in force.
func (c candidate[T]) keeps() bool { return c.unchanged || (!c.ok && c.hasPrev) }

func order[T any](cands []candidate[T]) {
	slices.SortFunc(cands, func(a, b candidate[T]) int {
		if a.keeps() != b.keeps() {
			if a.keeps() {
				return -1
			}
			return 1
		}
		return cmp.Or(a.meta.CreationTimestamp.Compare(b.meta.CreationTimestamp.Time), cmp.Compare(a.name, b.name))
	})
}

func (b *builder) add(ps []Problem) { b.problems = append(b.problems, ps...) }

func (b *builder) problem(kind, name, field, format string, args ...any) {
	b.problems = append(b.problems, Problem{Kind: kind, Name: name, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (b *builder) bfdProfiles(objs []v1beta1.BFDProfile) {
	for i := range objs {
		prof, ps := convertBFD(&objs[i])
		if len(ps) == 0 {
			b.cfg.BFDProfiles[prof.Name] = prof
			continue
		}
		b.add(ps)
		if old := b.prev.BFDProfiles[prof.Name]; old != nil {
			b.cfg.BFDProfiles[prof.Name] = old
		}
	}
}

func (b *builder) communities(objs []v1beta1.Community) {
	cands := make([]candidate[map[string]CommunityValue], 0, len(objs))
	for i := range objs {
		o := &objs[i]
		aliases, ps := convertCommunity(o)
		b.add(ps)
		c := candidate[map[string]CommunityValue]{name: o.Name, meta: o.ObjectMeta, current: aliases, ok: len(ps) == 0}
		prev := b.prevAliases(o.Name)
		c.hasPrev = len(prev) > 0
		c.unchanged = c.ok && maps.Equal(aliases, prev)
		cands = append(cands, c)
	}
	order(cands)
	for _, c := range cands {
		if c.ok {
			if clash := b.aliasClash(c.current); clash == "" {
				b.acceptAliases(c.name, c.current)
				continue
			} else {
				b.problem(KindCommunity, c.name, "spec.communities", "%s", clash)
			}
		}
		if old := b.prevAliases(c.name); len(old) > 0 && b.aliasClash(old) == "" {
			b.acceptAliases(c.name, old)
		}
	}
}

func (b *builder) prevAliases(owner string) map[string]CommunityValue {
	out := map[string]CommunityValue{}
	for alias, o := range b.prev.CommunityOwners {
		if o == owner {
			if v, ok := b.prev.Communities[alias]; ok {
				out[alias] = v
			}
		}
	}
	return out
}

func (b *builder) aliasClash(aliases map[string]CommunityValue) string {
	for _, name := range slices.Sorted(maps.Keys(aliases)) {
		if owner, ok := b.cfg.CommunityOwners[name]; ok {
			return fmt.Sprintf("alias %q is already defined by Community %q; alias names must be unique", name, owner)
		}
	}
	return ""
}

func (b *builder) acceptAliases(owner string, aliases map[string]CommunityValue) {
	for name, v := range aliases {
		b.cfg.Communities[name] = v
		b.cfg.CommunityOwners[name] = owner
	}
}

// ownedRange is an accepted pool range.
type ownedRange struct {
	Range
	pool string
}

func (b *builder) pools(objs []v1beta1.IPAddressPool) {
	cands := make([]candidate[*Pool], 0, len(objs))
	for i := range objs {
		o := &objs[i]
		pool, ps := convertPool(o)
		b.add(ps)
		c := candidate[*Pool]{name: o.Name, meta: o.ObjectMeta, current: pool, ok: len(ps) == 0}
		c.hasPrev = b.prev.Pools[o.Name] != nil
		c.unchanged = c.ok && equalPool(pool, b.prev.Pools[o.Name])
		cands = append(cands, c)
	}
	order(cands)
	// accepted holds the ranges in force, sorted by First; they never overlap, so the only
	// one that can overlap a range r is the last one starting at or before r.Last.
	var accepted []ownedRange
	overlap := func(p *Pool) (Range, ownedRange, bool) {
		for _, r := range p.Ranges {
			i, _ := slices.BinarySearchFunc(accepted, r.Last, func(a ownedRange, last netip.Addr) int {
				if a.First.Compare(last) <= 0 {
					return -1
				}
				return 1
			})
			if i > 0 && accepted[i-1].Overlaps(r) {
				return r, accepted[i-1], true
			}
		}
		return Range{}, ownedRange{}, false
	}
	accept := func(p *Pool) {
		b.cfg.Pools[p.Name] = p
		for _, r := range p.Ranges {
			i, _ := slices.BinarySearchFunc(accepted, r, func(a ownedRange, r Range) int { return compareRange(a.Range, r) })
			accepted = slices.Insert(accepted, i, ownedRange{r, p.Name})
		}
		b.minBits[p.Name] = minPrefixBits(p)
	}
	for _, c := range cands {
		if c.ok {
			r, other, bad := overlap(c.current)
			if !bad {
				accept(c.current)
				continue
			}
			b.problem(KindIPAddressPool, c.name, "spec.addresses", "%s overlaps %s of IPAddressPool %q; pools must not share addresses",
				r, other.Range, other.pool)
		}
		if old := b.prev.Pools[c.name]; old != nil {
			if _, _, bad := overlap(old); !bad {
				accept(old)
			}
		}
	}
}

func (b *builder) peers(objs []v1beta1.BGPPeer, profiles []v1beta1.BFDProfile) {
	profileExists := map[string]bool{}
	for i := range profiles {
		profileExists[profiles[i].Name] = true
	}
	cands := make([]candidate[*BGPPeer], 0, len(objs))
	for i := range objs {
		o := &objs[i]
		peer, ps := convertPeer(o)
		if peer.BFDProfile != "" && b.cfg.BFDProfiles[peer.BFDProfile] == nil {
			ps = append(ps, Problem{Kind: KindBGPPeer, Name: o.Name, Field: "spec.bfdProfile",
				Message: missing(KindBFDProfile, peer.BFDProfile, profileExists[peer.BFDProfile])})
		}
		b.add(ps)
		c := candidate[*BGPPeer]{name: o.Name, meta: o.ObjectMeta, current: peer, ok: len(ps) == 0}
		c.hasPrev = b.prev.BGPPeers[o.Name] != nil
		c.unchanged = c.ok && equalPeer(peer, b.prev.BGPPeers[o.Name])
		cands = append(cands, c)
	}
	order(cands)
	var accepted []*BGPPeer
	dup := func(p *BGPPeer) *BGPPeer {
		for _, a := range accepted {
			if a.Address == p.Address && a.Port == p.Port &&
				(len(a.NodeSelectors) == 0 || len(p.NodeSelectors) == 0 || equalSelectors(a.NodeSelectors, p.NodeSelectors)) {
				return a
			}
		}
		return nil
	}
	accept := func(p *BGPPeer) {
		b.cfg.BGPPeers[p.Name] = p
		accepted = append(accepted, p)
	}
	for _, c := range cands {
		if c.ok {
			other := dup(c.current)
			if other == nil {
				accept(c.current)
				continue
			}
			b.problem(KindBGPPeer, c.name, "spec.peerAddress", "duplicates BGPPeer %q: same peerAddress %s and peerPort %d from the same nodes",
				other.Name, c.current.Address, c.current.Port)
		}
		if old := b.prev.BGPPeers[c.name]; old != nil && dup(old) == nil {
			if old.BFDProfile != "" && b.cfg.BFDProfiles[old.BFDProfile] == nil {
				// The profile it used is gone: keep the session, without BFD, and without
				// strict mode, which would withdraw every route for want of a BFD session
				// (a deleted profile must not withdraw live IPs).
				cp := *old
				cp.BFDProfile, cp.StrictBFD = "", false
				old = &cp
			}
			accept(old)
		}
	}
}

// missing describes a reference to an object that is not in the Config.
func missing(kind, name string, exists bool) string {
	if exists {
		return fmt.Sprintf("%s %q is not valid (see its Valid condition), so this object cannot use it", kind, name)
	}
	return fmt.Sprintf("%s %q does not exist", kind, name)
}

// resolvePools returns the sorted names of the pools in the Config that an advertisement
// covers, and problems for named pools that are not in the Config.
func (b *builder) resolvePools(p *problems, c advertisementCommon, poolLabels map[string]labels.Set, existing map[string]bool) []string {
	if len(c.poolNames) == 0 && len(c.poolSelectors) == 0 {
		if b.allPools == nil {
			b.allPools = slices.Sorted(maps.Keys(b.cfg.Pools))
		}
		return slices.Clone(b.allPools)
	}
	set := map[string]bool{}
	for i, name := range c.poolNames {
		if b.cfg.Pools[name] == nil {
			p.add(fmt.Sprintf("spec.ipAddressPools[%d]", i), "%s", missing(KindIPAddressPool, name, existing[name]))
			continue
		}
		set[name] = true
	}
	for name := range b.cfg.Pools {
		for _, sel := range c.poolSelectors {
			if sel.Matches(poolLabels[name]) {
				set[name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// keepPools filters the pool names of a last good advertisement to those still in the
// Config.
func (b *builder) keepPools(names []string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return b.cfg.Pools[n] == nil })
}

func (b *builder) l2Advertisements(objs []v1beta1.L2Advertisement, poolLabels map[string]labels.Set, existing map[string]bool) {
	for i := range objs {
		o := &objs[i]
		p := &problems{kind: KindL2Advertisement, name: o.Name}
		common := convertAdvertisementCommon(p, o.Spec.IPAddressPools, o.Spec.IPAddressPoolSelectors, o.Spec.NodeSelectors)
		checkInterfaces(p, o.Spec.Interfaces)
		adv := &L2Advertisement{Name: o.Name, NodeSelectors: common.nodeSelectors, Interfaces: slices.Clone(o.Spec.Interfaces)}
		adv.Pools = b.resolvePools(p, common, poolLabels, existing)
		if p.ok() {
			b.cfg.L2Advertisements[o.Name] = adv
			continue
		}
		b.add(p.list)
		if old := b.prev.L2Advertisements[o.Name]; old != nil {
			cp := *old
			cp.Pools = b.keepPools(old.Pools)
			b.cfg.L2Advertisements[o.Name] = &cp
		}
	}
}

func (b *builder) bgpAdvertisements(objs []v1beta1.BGPAdvertisement, poolLabels map[string]labels.Set, existing, existingPeers map[string]bool) {
	for i := range objs {
		o := &objs[i]
		s := &o.Spec
		p := &problems{kind: KindBGPAdvertisement, name: o.Name}
		common := convertAdvertisementCommon(p, s.IPAddressPools, s.IPAddressPoolSelectors, s.NodeSelectors)
		adv := &BGPAdvertisement{Name: o.Name, NodeSelectors: common.nodeSelectors, AggregationLength: 32, AggregationLengthV6: 128}
		if v := s.AggregationLength; v != nil {
			if *v < 0 || *v > 32 {
				p.add("spec.aggregationLength", "aggregationLength must be an IPv4 prefix length from 0 to 32, not %d", *v)
			} else {
				adv.AggregationLength = int(*v)
			}
		}
		if v := s.AggregationLengthV6; v != nil {
			if *v < 0 || *v > 128 {
				p.add("spec.aggregationLengthV6", "aggregationLengthV6 must be an IPv6 prefix length from 0 to 128, not %d", *v)
			} else {
				adv.AggregationLengthV6 = int(*v)
			}
		}
		if v := s.LocalPref; v != nil {
			if *v < 0 || *v > 4294967295 {
				p.add("spec.localPref", "localPref must be from 0 to 4294967295, not %d", *v)
			} else {
				adv.LocalPref = uint32(*v)
			}
		}
		for i, c := range s.Communities {
			field := fmt.Sprintf("spec.communities[%d]", i)
			if !strings.Contains(c, ":") {
				if !IsAliasName(c) {
					p.add(field, "%q is not a community: use AA:NN (each part 0-65535), a large community A:B:C (each part 0-4294967295), or the name of a Community alias", c)
				} else if v, ok := b.cfg.Communities[c]; ok {
					adv.Communities = append(adv.Communities, v)
				} else {
					p.add(field, "community alias %q is not defined by any valid Community", c)
				}
				continue
			}
			v, err := ParseCommunity(c)
			if err != nil {
				p.add(field, "%q is not a community: use AA:NN (each part 0-65535), a large community A:B:C (each part 0-4294967295), or the name of a Community alias", c)
				continue
			}
			adv.Communities = append(adv.Communities, v)
		}
		for i, name := range s.Peers {
			if b.cfg.BGPPeers[name] == nil {
				p.add(fmt.Sprintf("spec.peers[%d]", i), "%s", missing(KindBGPPeer, name, existingPeers[name]))
			}
		}
		adv.Peers = slices.Clone(s.Peers)
		adv.Pools = b.resolvePools(p, common, poolLabels, existing)
		b.checkAggregation(p, adv)
		if p.ok() {
			b.cfg.BGPAdvertisements[o.Name] = adv
			continue
		}
		b.add(p.list)
		if old := b.prev.BGPAdvertisements[o.Name]; old != nil {
			cp := *old
			cp.Pools = b.keepPools(old.Pools)
			cp.Peers = slices.DeleteFunc(slices.Clone(old.Peers), func(n string) bool { return b.cfg.BGPPeers[n] == nil })
			if len(old.Peers) > 0 && len(cp.Peers) == 0 {
				continue // all its peers are gone: an empty list would mean every peer
			}
			b.cfg.BGPAdvertisements[o.Name] = &cp
		}
	}
}

// checkAggregation rejects an aggregation length shorter than a covered pool's own
// prefixes: the announced prefix would then cover addresses outside the pool.
func (b *builder) checkAggregation(p *problems, adv *BGPAdvertisement) {
	for _, name := range adv.Pools {
		m := b.minBits[name]
		switch {
		case m[0].ok && adv.AggregationLength < m[0].bits:
			p.add("spec.aggregationLength", "aggregationLength %d is shorter than prefix %s of IPAddressPool %q: the announcement would cover addresses outside the pool",
				adv.AggregationLength, m[0].prefix, name)
			return
		case m[1].ok && adv.AggregationLengthV6 < m[1].bits:
			p.add("spec.aggregationLengthV6", "aggregationLengthV6 %d is shorter than prefix %s of IPAddressPool %q: the announcement would cover addresses outside the pool",
				adv.AggregationLengthV6, m[1].prefix, name)
			return
		}
	}
}

func equalSelectors(a, b []labels.Selector) bool {
	return slices.EqualFunc(a, b, func(x, y labels.Selector) bool { return x.String() == y.String() })
}

func equalPool(a, b *Pool) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Name != b.Name || a.AutoAssign != b.AutoAssign || a.AvoidBuggyIPs != b.AvoidBuggyIPs ||
		a.DataplaneMode != b.DataplaneMode || !slices.Equal(a.Ranges, b.Ranges) || !slices.Equal(a.CIDRs, b.CIDRs) {
		return false
	}
	x, y := a.Allocation, b.Allocation
	if x == nil || y == nil {
		return x == y
	}
	return x.Priority == y.Priority && slices.Equal(x.Namespaces, y.Namespaces) &&
		equalSelectors(x.NamespaceSelectors, y.NamespaceSelectors) && equalSelectors(x.ServiceSelectors, y.ServiceSelectors)
}

func equalPeer(a, b *BGPPeer) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.NodeSelectors, y.NodeSelectors = nil, nil
	return reflect.DeepEqual(x, y) && equalSelectors(a.NodeSelectors, b.NodeSelectors)
}
