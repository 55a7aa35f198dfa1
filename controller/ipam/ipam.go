package ipam

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
)

// Allocator assigns pool addresses to Services. It is not safe for concurrent use; the
// caller serialises calls.
//
// Invariants: every allocated address lies in exactly one pool's ranges; an address is
// used by several Services only if every pair of them is compatible (same sharing key,
// no port clash, same traffic policy, same selector for Local); the free sets hold exactly
// the usable, unallocated addresses of each pool.
type Allocator struct {
	pools map[string]*poolState
	// order is the auto-assign order of all pools: priority set first (ascending), then
	// pools with serviceAllocation but no priority, then pools without it; names break ties.
	order []*poolState
	// index holds every range per family, sorted, to find an address's pool.
	index [2][]rangeRef
	ips   map[netip.Addr]*ipUse
	svcs  map[types.NamespacedName]*svcAlloc
	// keys maps a sharing key to the addresses whose users have that key.
	keys map[string]map[netip.Addr]struct{}
}

type poolState struct {
	p    *model.Pool
	fams [2]*famState // nil when the pool has no range of that family
	// terminating: the pool is being deleted (SetTerminating). Its addresses stay with the
	// Services holding them, but nothing new is handed out of it, shared or not.
	terminating bool
}

type famState struct {
	ranges []span
	free   *freeSet
	used   int // distinct allocated addresses
	avoid  bool
	// excl are the special-purpose parts of the ranges (Excluded), sorted and disjoint:
	// never free, never allocated.
	excl []exclSpan
}

type exclSpan struct {
	s    span
	what string
}

// excluded returns what makes x special-purpose in this family of the pool, if it is.
func (fs *famState) excluded(x u128) (string, bool) {
	for _, e := range fs.excl {
		if !x.less(e.s.first) && !e.s.last.less(x) {
			return e.what, true
		}
	}
	return "", false
}

type rangeRef struct {
	s    span
	pool *poolState
}

type ipUse struct {
	pool string
	key  string
	// users holds the Services sharing the address (almost always one): a slice, not a
	// map, which costs ~400 bytes per address more at 10k allocations.
	users []*svcAlloc
}

func (u *ipUse) user(svc types.NamespacedName) *svcAlloc {
	for _, sa := range u.users {
		if sa.req.Service == svc {
			return sa
		}
	}
	return nil
}

func (u *ipUse) addUser(sa *svcAlloc) {
	for i, x := range u.users {
		if x.req.Service == sa.req.Service {
			u.users[i] = sa
			return
		}
	}
	u.users = append(u.users, sa)
}

func (u *ipUse) removeUser(svc types.NamespacedName) {
	u.users = slices.DeleteFunc(u.users, func(sa *svcAlloc) bool { return sa.req.Service == svc })
}

type svcAlloc struct {
	req Request
	ips []netip.Addr // in the Service's family order
}

// New returns an Allocator with no pools.
func New() *Allocator {
	return &Allocator{
		pools: map[string]*poolState{},
		ips:   map[netip.Addr]*ipUse{},
		svcs:  map[types.NamespacedName]*svcAlloc{},
		keys:  map[string]map[netip.Addr]struct{}{},
	}
}

// Allocation is what a Service holds.
type Allocation struct {
	// IPs in the order of the Service's families.
	IPs []netip.Addr
	// Pools[i] is the pool covering IPs[i].
	Pools []string
}

// Pool returns the pool of the first IP, or "".
func (al Allocation) Pool() string {
	if len(al.Pools) == 0 {
		return ""
	}
	return al.Pools[0]
}

func buggy(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[3] == 0 || b[3] == 255
}

// SetPools replaces the pools. Addresses still covered by a pool stay allocated (moving to
// the covering pool if it changed); addresses no pool covers are released. The Services
// that lost an address, or whose address now belongs to another pool, are returned
// (sorted) so that the caller assigns them again and rewrites their pool. A
// configuration with overlapping or malformed ranges is rejected and nothing changes.
func (a *Allocator) SetPools(pools []*model.Pool) ([]types.NamespacedName, error) {
	newPools := map[string]*poolState{}
	var index [2][]rangeRef
	for _, p := range pools {
		if _, dup := newPools[p.Name]; dup {
			return nil, fmt.Errorf("pool %q listed twice", p.Name)
		}
		ps := &poolState{p: p}
		for _, r := range p.Ranges {
			if !r.First.IsValid() || !r.Last.IsValid() || r.First.Is4() != r.Last.Is4() || r.Last.Less(r.First) {
				return nil, fmt.Errorf("pool %q: malformed range %s-%s", p.Name, r.First, r.Last)
			}
			f := familyOf(r.First)
			if ps.fams[f] == nil {
				ps.fams[f] = &famState{free: newFreeSet(), avoid: p.AvoidBuggyIPs && f == IPv4}
			}
			s := span{fromAddr(r.First), fromAddr(r.Last)}
			ps.fams[f].ranges = append(ps.fams[f].ranges, s)
			index[f] = append(index[f], rangeRef{s, ps})
		}
		for _, e := range Excluded(p) {
			fs := ps.fams[familyOf(e.Range.First)]
			fs.excl = append(fs.excl, exclSpan{span{fromAddr(e.Range.First), fromAddr(e.Range.Last)}, e.What})
		}
		for _, fs := range ps.fams {
			if fs != nil {
				slices.SortFunc(fs.ranges, func(x, y span) int { return x.first.cmp(y.first) })
			}
		}
		newPools[p.Name] = ps
	}
	for f := range index {
		slices.SortFunc(index[f], func(x, y rangeRef) int { return x.s.first.cmp(y.s.first) })
		for i := 1; i < len(index[f]); i++ {
			if !index[f][i-1].s.last.less(index[f][i].s.first) {
				x, y := index[f][i-1], index[f][i]
				return nil, fmt.Errorf("pools %q and %q overlap at %s", x.pool.p.Name, y.pool.p.Name, y.s.first.addr(Family(f)))
			}
		}
	}

	// Re-home or release every allocated address.
	affected := map[types.NamespacedName]bool{}
	held := map[*famState][]u128{}
	for ip, use := range a.ips {
		ps := lookup(index, ip)
		if ps != nil {
			if _, special := ps.fams[familyOf(ip)].excluded(fromAddr(ip)); special {
				ps = nil // never held: released like an address no pool covers
			}
		}
		if ps == nil {
			for _, sa := range use.users {
				k := sa.req.Service
				sa.ips = slices.DeleteFunc(sa.ips, func(x netip.Addr) bool { return x == ip })
				affected[k] = true
				if len(sa.ips) == 0 {
					delete(a.svcs, k)
				}
			}
			a.unindexKey(ip, use.key)
			delete(a.ips, ip)
			continue
		}
		if use.pool != ps.p.Name {
			for _, sa := range use.users {
				affected[sa.req.Service] = true // re-homed: its allocated-from-pool changes
			}
		}
		use.pool = ps.p.Name
		fs := ps.fams[familyOf(ip)]
		fs.used++
		held[fs] = append(held[fs], fromAddr(ip))
	}
	for _, ps := range newPools {
		for _, fs := range ps.fams {
			if fs == nil {
				continue
			}
			h := held[fs]
			slices.SortFunc(h, u128.cmp)
			for _, r := range fs.ranges {
				cur, done := r.first, false
				for len(h) > 0 && !r.last.less(h[0]) {
					if cur.less(h[0]) {
						fs.addUsable(span{cur, h[0].dec()})
					}
					done = h[0] == r.last // h[0]+1 may wrap around
					cur = h[0].inc()
					h = h[1:]
				}
				if !done {
					fs.addUsable(span{cur, r.last})
				}
			}
		}
	}

	order := make([]*poolState, 0, len(newPools))
	for _, ps := range newPools {
		order = append(order, ps)
	}
	slices.SortFunc(order, func(x, y *poolState) int {
		cx, px := rank(x.p)
		cy, py := rank(y.p)
		return cmp.Or(cmp.Compare(cx, cy), cmp.Compare(px, py), cmp.Compare(x.p.Name, y.p.Name))
	})
	a.pools, a.order, a.index = newPools, order, index

	out := make([]types.NamespacedName, 0, len(affected))
	for k := range affected {
		out = append(out, k)
	}
	slices.SortFunc(out, cmpName)
	return out, nil
}

func cmpName(x, y types.NamespacedName) int {
	return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
}

// SetTerminating marks the named pools (of those SetPools put in force) as being deleted:
// the Services holding their addresses keep them (Restore still claims them), but no
// Service gets a new address or a new share of one from them. It replaces the previous
// marks; SetPools clears them, so call it after every SetPools.
func (a *Allocator) SetTerminating(names ...string) {
	for name, ps := range a.pools {
		ps.terminating = slices.Contains(names, name)
	}
}

// rank orders pools for auto-assignment: class 0 has a priority, class 1 has
// serviceAllocation without priority, class 2 has no serviceAllocation.
func rank(p *model.Pool) (class, prio int) {
	switch {
	case p.Allocation == nil:
		return 2, 0
	case p.Allocation.Priority == 0:
		return 1, 0
	}
	return 0, p.Allocation.Priority
}

func (fs *famState) addUsable(s span) {
	// Cut out the special-purpose parts (sorted, disjoint, each within one range).
	for _, e := range fs.excl {
		if e.s.last.less(s.first) || s.last.less(e.s.first) {
			continue
		}
		if s.first.less(e.s.first) {
			fs.addUsableNotSpecial(span{s.first, e.s.first.dec()})
		}
		if !e.s.last.less(s.last) {
			return
		}
		s.first = e.s.last.inc()
	}
	fs.addUsableNotSpecial(s)
}

func (fs *famState) addUsableNotSpecial(s span) {
	if !fs.avoid {
		fs.free.add(s)
		return
	}
	// IPv4 only: drop every x.y.z.0 and x.y.z.255.
	for x := s.first.lo; x <= s.last.lo; {
		base := x &^ 0xff
		lo, hi := max(x, base+1), min(s.last.lo, base+254)
		if lo <= hi {
			fs.free.add(span{u128{lo: lo}, u128{lo: hi}})
		}
		x = base + 256
	}
}

func lookup(index [2][]rangeRef, ip netip.Addr) *poolState {
	rs := index[familyOf(ip)]
	x := fromAddr(ip)
	i, _ := slices.BinarySearchFunc(rs, x, func(r rangeRef, x u128) int {
		switch {
		case r.s.last.less(x):
			return -1
		case x.less(r.s.first):
			return 1
		}
		return 0
	})
	if i < len(rs) && !x.less(rs[i].s.first) && !rs[i].s.last.less(x) {
		return rs[i].pool
	}
	return nil
}

// PoolOf returns the pool covering ip, or "".
func (a *Allocator) PoolOf(ip netip.Addr) string {
	if ps := lookup(a.index, ip); ps != nil {
		return ps.p.Name
	}
	return ""
}

func allows(p *model.Pool, r *Request) bool {
	sa := p.Allocation
	if sa == nil {
		return true
	}
	if len(sa.Namespaces) > 0 && !slices.Contains(sa.Namespaces, r.Service.Namespace) {
		return false
	}
	if len(sa.NamespaceSelectors) > 0 && !slices.ContainsFunc(sa.NamespaceSelectors, func(s labels.Selector) bool {
		return s.Matches(labels.Set(r.NamespaceLabels))
	}) {
		return false
	}
	if len(sa.ServiceSelectors) > 0 && !slices.ContainsFunc(sa.ServiceSelectors, func(s labels.Selector) bool {
		return s.Matches(labels.Set(r.Labels))
	}) {
		return false
	}
	return true
}

// Get returns what the Service holds.
func (a *Allocator) Get(svc types.NamespacedName) (Allocation, bool) {
	sa, ok := a.svcs[svc]
	if !ok {
		return Allocation{}, false
	}
	return a.allocation(sa), true
}

func (a *Allocator) allocation(sa *svcAlloc) Allocation {
	if sa == nil {
		return Allocation{}
	}
	al := Allocation{IPs: slices.Clone(sa.ips)}
	for _, ip := range sa.ips {
		al.Pools = append(al.Pools, a.ips[ip].pool)
	}
	return al
}

// Users returns the Services using ip, sorted.
func (a *Allocator) Users(ip netip.Addr) []types.NamespacedName {
	use := a.ips[ip]
	if use == nil {
		return nil
	}
	return sortedUsers(use)
}

func sortedUsers(use *ipUse) []types.NamespacedName {
	out := make([]types.NamespacedName, 0, len(use.users))
	for _, sa := range use.users {
		out = append(out, sa.req.Service)
	}
	slices.SortFunc(out, cmpName)
	return out
}

// Restore records that the Service already holds ips (from its status), before anything
// is assigned. Addresses that lie in no pool, are of a family the Service does not have
// or a second copy of one, or are held by an incompatible Service are not claimed; the
// claimed ones are returned. An address avoidBuggyIPs excludes is claimed (the Service
// held it before). A Service that already has an allocation is left as it is.
func (a *Allocator) Restore(req Request, ips []netip.Addr) []netip.Addr {
	if sa, ok := a.svcs[req.Service]; ok {
		return slices.Clone(sa.ips)
	}
	sa := &svcAlloc{req: req}
	var seen [2]bool
	var claim []netip.Addr
	for _, ip := range ips {
		ip = ip.Unmap()
		f := familyOf(ip)
		if seen[f] || !slices.Contains(req.Families, f) || a.usable(ip, &req, true) != nil {
			continue
		}
		seen[f] = true
		claim = append(claim, ip)
	}
	if len(claim) == 0 {
		return nil
	}
	a.claim(sa, claim)
	return slices.Clone(sa.ips)
}

// usable checks that req may take ip: covered, not excluded (unless restoring), and free
// or shareable.
func (a *Allocator) usable(ip netip.Addr, req *Request, restoring bool) *Error {
	ps := lookup(a.index, ip)
	if ps == nil {
		return errorf(ReasonIPNotInPool, "%s is in no pool", ip)
	}
	if what, special := ps.fams[familyOf(ip)].excluded(fromAddr(ip)); special {
		return errorf(ReasonInvalidRequest, "%s is a special-purpose address (%s) of pool %q and is never allocated", ip, what, ps.p.Name)
	}
	if use := a.ips[ip]; use != nil {
		for _, k := range sortedUsers(use) {
			if k == req.Service {
				continue
			}
			if !compatible(req, &use.user(k).req) {
				return &Error{Reason: ReasonIPInUse, InUseBy: k, Message: fmt.Sprintf("%s is in use by %s", ip, k)}
			}
		}
		return nil
	}
	if fs := ps.fams[familyOf(ip)]; !fs.free.contains(fromAddr(ip)) && !(restoring && fs.avoid && buggy(ip)) {
		return errorf(ReasonIPNotInPool, "%s is excluded by avoidBuggyIPs of pool %q", ip, ps.p.Name)
	}
	return nil
}

// claim gives ips (each checked with usable) to sa and records sa.
func (a *Allocator) claim(sa *svcAlloc, ips []netip.Addr) {
	for _, ip := range ips {
		use := a.ips[ip]
		if use == nil {
			ps := lookup(a.index, ip)
			fs := ps.fams[familyOf(ip)]
			// An excluded (avoidBuggyIPs) address is never in the free set; it is claimed only
			// by Restore or by a Service taking back what it held.
			if !fs.free.take(fromAddr(ip)) && !(fs.avoid && buggy(ip)) {
				panic(fmt.Sprintf("ipam: claiming %s, which is not free", ip))
			}
			fs.used++
			use = &ipUse{pool: ps.p.Name, key: sa.req.SharingKey}
			a.ips[ip] = use
			a.indexKey(ip, use.key)
		}
		use.addUser(sa)
		if !slices.Contains(sa.ips, ip) {
			sa.ips = append(sa.ips, ip)
		}
	}
	sa.sortIPs()
	a.svcs[sa.req.Service] = sa
}

func (sa *svcAlloc) sortIPs() {
	slices.SortStableFunc(sa.ips, func(x, y netip.Addr) int {
		return slices.Index(sa.req.Families, familyOf(x)) - slices.Index(sa.req.Families, familyOf(y))
	})
}

func (a *Allocator) indexKey(ip netip.Addr, key string) {
	if key == "" {
		return
	}
	m := a.keys[key]
	if m == nil {
		m = map[netip.Addr]struct{}{}
		a.keys[key] = m
	}
	m[ip] = struct{}{}
}

func (a *Allocator) unindexKey(ip netip.Addr, key string) {
	if m := a.keys[key]; m != nil {
		delete(m, ip)
		if len(m) == 0 {
			delete(a.keys, key)
		}
	}
}

// Release frees what the Service holds; shared addresses stay with their other users. It
// reports whether the Service held anything.
func (a *Allocator) Release(svc types.NamespacedName) bool {
	sa, ok := a.svcs[svc]
	if !ok {
		return false
	}
	delete(a.svcs, svc)
	for _, ip := range sa.ips {
		a.releaseIP(svc, ip)
	}
	return true
}

func (a *Allocator) releaseIP(svc types.NamespacedName, ip netip.Addr) {
	use := a.ips[ip]
	use.removeUser(svc)
	if len(use.users) > 0 {
		return
	}
	delete(a.ips, ip)
	a.unindexKey(ip, use.key)
	ps := a.pools[use.pool]
	fs := ps.fams[familyOf(ip)]
	fs.used--
	x := fromAddr(ip)
	if _, special := fs.excluded(x); !special && !(fs.avoid && buggy(ip)) {
		fs.free.add(span{x, x})
	}
}

// Assign gives the Service the addresses its request asks for. If what it holds still
// satisfies the request it keeps it (adding a missing family of a dual-stack Service from
// the same pool). Otherwise the request is evaluated afresh, with the Service's own
// addresses counted as free; if that fails, the Service keeps what it held and the error
// says why. The returned Allocation is what the Service holds afterwards.
func (a *Allocator) Assign(req Request) (Allocation, error) {
	if len(req.Families) == 0 {
		return Allocation{}, errorf(ReasonInvalidRequest, "the Service has no IP family")
	}
	cur := a.svcs[req.Service]
	if cur != nil && a.valid(cur, &req) {
		if cur.req.SharingKey != req.SharingKey {
			for _, ip := range cur.ips { // cur is the only user (valid checked)
				use := a.ips[ip]
				a.unindexKey(ip, use.key)
				use.key = req.SharingKey
				a.indexKey(ip, use.key)
			}
		}
		cur.req = req
		cur.sortIPs() // the request's family order may differ from the one it was given under
		err := a.fill(cur)
		return a.allocation(cur), err
	}
	if cur != nil {
		a.Release(req.Service)
	}
	ips, err := a.plan(&req)
	if err != nil {
		if cur != nil && len(cur.ips) > 0 {
			a.claim(cur, cur.ips)
			return a.allocation(cur), err
		}
		return Allocation{}, err
	}
	sa := &svcAlloc{req: req}
	a.claim(sa, ips)
	return a.allocation(sa), nil
}

// valid reports whether what sa holds satisfies req.
func (a *Allocator) valid(sa *svcAlloc, req *Request) bool {
	if len(sa.ips) == 0 {
		return false
	}
	wanted := req.wanted()
	for _, ip := range sa.ips {
		if !slices.Contains(wanted, familyOf(ip)) {
			return false
		}
		if len(req.IPs) > 0 && !slices.Contains(req.IPs, ip) {
			return false
		}
		use := a.ips[ip]
		if req.Pool != "" && use.pool != req.Pool {
			return false
		}
		for _, other := range use.users {
			if other.req.Service != req.Service && !compatible(req, &other.req) {
				return false
			}
		}
	}
	return len(req.IPs) == 0 || len(req.IPs) == len(sa.ips)
}

// fill adds the families a dual-stack Service lacks, from the pool of what it holds.
func (a *Allocator) fill(sa *svcAlloc) error {
	if len(sa.req.IPs) > 0 {
		return nil
	}
	ps := a.pools[a.ips[sa.ips[0]].pool]
	if ps.terminating {
		if sa.req.Policy == RequireDualStack && len(sa.ips) < len(sa.req.wanted()) {
			return errorf(ReasonPoolTerminating, "pool %q of the Service's other address is being deleted: it hands out nothing new", ps.p.Name)
		}
		return nil
	}
	var add []netip.Addr
	for _, f := range sa.req.wanted() {
		if slices.ContainsFunc(sa.ips, func(ip netip.Addr) bool { return familyOf(ip) == f }) {
			continue
		}
		ip, offered := a.pick(ps, f, &sa.req)
		if ip.IsValid() {
			add = append(add, ip)
			continue
		}
		if sa.req.Policy != RequireDualStack {
			continue
		}
		if !offered {
			return errorf(ReasonFamilyNotOffered, "pool %q of the Service's other address has no %s range", ps.p.Name, f)
		}
		return errorf(ReasonPoolExhausted, "pool %q has no free %s address", ps.p.Name, f)
	}
	if len(add) > 0 {
		a.claim(sa, add)
	}
	return nil
}

// pick chooses an address of family f in pool ps for req: the lowest compatible shared
// address with req's sharing key, else the lowest free one. offered is false when the
// pool has no range of the family.
func (a *Allocator) pick(ps *poolState, f Family, req *Request) (ip netip.Addr, offered bool) {
	fs := ps.fams[f]
	if fs == nil {
		return netip.Addr{}, false
	}
	if shared := a.shared(ps, f, req); shared.IsValid() {
		return shared, true
	}
	if x, ok := fs.free.lowest(); ok {
		return x.addr(f), true
	}
	return netip.Addr{}, true
}

// shared returns the lowest address of family f in pool ps that req may share, or the
// zero Addr.
func (a *Allocator) shared(ps *poolState, f Family, req *Request) netip.Addr {
	if req.SharingKey == "" {
		return netip.Addr{}
	}
	var best netip.Addr
	for ip := range a.keys[req.SharingKey] {
		use := a.ips[ip]
		if familyOf(ip) != f || use.pool != ps.p.Name || (best.IsValid() && best.Less(ip)) {
			continue
		}
		ok := true
		for _, other := range use.users {
			if other.req.Service != req.Service && !compatible(req, &other.req) {
				ok = false
				break
			}
		}
		if ok {
			best = ip
		}
	}
	return best
}

// plan chooses addresses for req without changing anything.
func (a *Allocator) plan(req *Request) ([]netip.Addr, error) {
	if len(req.IPs) > 0 {
		return a.planRequested(req)
	}
	cands, err := a.candidates(req)
	if err != nil {
		return nil, err
	}
	wanted := req.wanted()
	passes := [][]Family{wanted}
	if req.Policy == PreferDualStack && len(wanted) == 2 {
		passes = append(passes, wanted[:1], wanted[1:])
	}
	offered := false
	for _, fams := range passes {
		// With a sharing key, a pool where the Service can share comes first.
		for _, needShared := range []bool{true, false} {
			if needShared && req.SharingKey == "" {
				continue
			}
			for _, ps := range cands {
				ips, off, shared := a.pickAll(ps, fams, req)
				offered = offered || off
				if ips != nil && (shared || !needShared) {
					return ips, nil
				}
			}
		}
	}
	names := make([]string, len(cands))
	for i, ps := range cands {
		names[i] = ps.p.Name
	}
	if !offered {
		return nil, errorf(ReasonFamilyNotOffered, "no pool the Service may use (%v) has %v addresses", names, wanted)
	}
	return nil, errorf(ReasonPoolExhausted, "no free address in the pools the Service may use (%v)", names)
}

// pickAll picks one address per family from ps; nil if any family fails.
func (a *Allocator) pickAll(ps *poolState, fams []Family, req *Request) (ips []netip.Addr, offered, shared bool) {
	exhausted := false
	for _, f := range fams {
		ip, off := a.pick(ps, f, req)
		if !off {
			return nil, false, false
		}
		if !ip.IsValid() {
			exhausted = true
			continue
		}
		if a.ips[ip] != nil {
			shared = true
		}
		ips = append(ips, ip)
	}
	if exhausted {
		return nil, true, false
	}
	return ips, true, shared
}

func (a *Allocator) candidates(req *Request) ([]*poolState, error) {
	if req.Pool != "" {
		ps := a.pools[req.Pool]
		if ps == nil {
			return nil, errorf(ReasonPoolNotFound, "pool %q does not exist", req.Pool)
		}
		if ps.terminating {
			return nil, errorf(ReasonPoolTerminating, "pool %q is being deleted: it hands out nothing new", req.Pool)
		}
		if !allows(ps.p, req) {
			return nil, errorf(ReasonPoolNotAllowed, "pool %q does not serve this Service (serviceAllocation)", req.Pool)
		}
		return []*poolState{ps}, nil
	}
	var out []*poolState
	terminating := 0
	for _, ps := range a.order {
		if ps.p.AutoAssign && allows(ps.p, req) {
			if ps.terminating {
				terminating++
				continue
			}
			out = append(out, ps)
		}
	}
	if len(out) == 0 {
		if terminating > 0 {
			return nil, errorf(ReasonNoPool, "no auto-assign pool serves this Service (%d that would is being deleted)", terminating)
		}
		return nil, errorf(ReasonNoPool, "no auto-assign pool serves this Service")
	}
	return out, nil
}

func (a *Allocator) planRequested(req *Request) ([]netip.Addr, error) {
	var ps *poolState
	for _, ip := range req.IPs {
		p := lookup(a.index, ip)
		if p == nil {
			return nil, errorf(ReasonIPNotInPool, "requested %s is in no pool", ip)
		}
		if ps != nil && p != ps {
			return nil, errorf(ReasonConflictingRequests, "requested IPs are in two pools (%q and %q)", ps.p.Name, p.p.Name)
		}
		ps = p
	}
	if req.Pool != "" && ps.p.Name != req.Pool {
		return nil, errorf(ReasonConflictingRequests, "requested %s is in pool %q, not in the requested pool %q", req.IPs[0], ps.p.Name, req.Pool)
	}
	if ps.terminating {
		// Assign released what the Service held before planning: a Service that held these
		// addresses keeps them through valid, or gets them back after a failed plan.
		return nil, errorf(ReasonPoolTerminating, "requested %s is in pool %q, which is being deleted: it hands out nothing new", req.IPs[0], ps.p.Name)
	}
	if !allows(ps.p, req) {
		return nil, errorf(ReasonPoolNotAllowed, "pool %q of the requested IP does not serve this Service (serviceAllocation)", ps.p.Name)
	}
	for _, ip := range req.IPs {
		if err := a.usable(ip, req, false); err != nil {
			return nil, err
		}
	}
	return slices.Clone(req.IPs), nil
}

// FamilyStats is the usage of one family of a pool.
type FamilyStats struct {
	// Offered is false when the pool has no range of the family.
	Offered bool
	// InUse counts distinct allocated addresses (a shared one counts once).
	InUse int
	// Available counts free, usable addresses.
	Available Count
}

// PoolStats is the usage of a pool per family.
type PoolStats struct {
	IPv4, IPv6 FamilyStats
}

// Stats returns the usage of every pool.
func (a *Allocator) Stats() map[string]PoolStats {
	out := make(map[string]PoolStats, len(a.pools))
	for name, ps := range a.pools {
		var st [2]FamilyStats
		for f, fs := range ps.fams {
			if fs != nil {
				st[f] = FamilyStats{Offered: true, InUse: fs.used, Available: Count{fs.free.n}}
			}
		}
		out[name] = PoolStats{IPv4: st[0], IPv6: st[1]}
	}
	return out
}

// PoolNames returns the names of the pools, sorted.
func (a *Allocator) PoolNames() []string {
	out := make([]string, 0, len(a.pools))
	for n := range a.pools {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ServicesIn returns the Services that hold an address of one of the named pools, sorted.
// It walks every allocation: meant for rare events such as a pool's dataplane mode change.
func (a *Allocator) ServicesIn(pools ...string) []types.NamespacedName {
	if len(pools) == 0 {
		return nil
	}
	var out []types.NamespacedName
	for k, sa := range a.svcs {
		if slices.ContainsFunc(sa.ips, func(ip netip.Addr) bool { return slices.Contains(pools, a.ips[ip].pool) }) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, cmpName)
	return out
}
