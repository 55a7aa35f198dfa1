package ipam

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
)

// checkInvariants verifies the Allocator's internal consistency and the two safety
// properties: no address is given to two Services that may not share it, and no address
// lies outside every pool.
func checkInvariants(t testing.TB, a *Allocator) {
	t.Helper()
	used := map[*famState]int{}
	for ip, use := range a.ips {
		ps := lookup(a.index, ip)
		if ps == nil {
			t.Fatalf("%s is allocated but in no pool", ip)
		}
		if ps.p.Name != use.pool {
			t.Fatalf("%s: recorded pool %q, covered by %q", ip, use.pool, ps.p.Name)
		}
		fs := ps.fams[familyOf(ip)]
		if fs.free.contains(fromAddr(ip)) {
			t.Fatalf("%s is allocated and free", ip)
		}
		used[fs]++
		if len(use.users) == 0 {
			t.Fatalf("%s has no users", ip)
		}
		seen := map[types.NamespacedName]bool{}
		for _, sa := range use.users {
			k := sa.req.Service
			if seen[k] {
				t.Fatalf("%s: user %s listed twice", ip, k)
			}
			seen[k] = true
			if a.svcs[k] != sa {
				t.Fatalf("%s: user %s is not the recorded Service", ip, k)
			}
			found := false
			for _, x := range sa.ips {
				found = found || x == ip
			}
			if !found {
				t.Fatalf("%s: user %s does not list it", ip, k)
			}
			if sa.req.SharingKey != use.key {
				t.Fatalf("%s: user %s key %q, ip key %q", ip, k, sa.req.SharingKey, use.key)
			}
			for _, sb := range use.users {
				if k2 := sb.req.Service; k != k2 && !compatible(&sa.req, &sb.req) {
					t.Fatalf("%s shared by incompatible %s and %s", ip, k, k2)
				}
			}
		}
		if use.key != "" {
			if _, ok := a.keys[use.key][ip]; !ok {
				t.Fatalf("%s missing from key index %q", ip, use.key)
			}
		}
	}
	for k, sa := range a.svcs {
		if len(sa.ips) == 0 {
			t.Fatalf("%s recorded with no addresses", k)
		}
		var seen [2]bool
		for _, ip := range sa.ips {
			if a.ips[ip] == nil || a.ips[ip].user(k) != sa {
				t.Fatalf("%s lists %s, which does not list it", k, ip)
			}
			if seen[familyOf(ip)] {
				t.Fatalf("%s holds two %s addresses", k, familyOf(ip))
			}
			seen[familyOf(ip)] = true
		}
	}
	for key, m := range a.keys {
		for ip := range m {
			if a.ips[ip] == nil || a.ips[ip].key != key {
				t.Fatalf("key index %q holds stale %s", key, ip)
			}
		}
	}
	for _, ps := range a.pools {
		for f, fs := range ps.fams {
			if fs == nil {
				continue
			}
			if fs.used != used[fs] {
				t.Fatalf("pool %s/%s: used %d, counted %d", ps.p.Name, Family(f), fs.used, used[fs])
			}
			// Free intervals: disjoint, not adjacent, inside the ranges, sized right, usable.
			var n u128
			var prev *span
			fs.free.t.Ascend(func(s span) bool {
				if s.last.less(s.first) {
					t.Fatalf("pool %s: reversed span", ps.p.Name)
				}
				if prev != nil && !prev.last.inc().less(s.first) {
					t.Fatalf("pool %s: spans overlap or touch", ps.p.Name)
				}
				if lookup(a.index, s.first.addr(Family(f))) != ps || lookup(a.index, s.last.addr(Family(f))) != ps {
					t.Fatalf("pool %s: free span outside the pool", ps.p.Name)
				}
				if fs.avoid && (buggy(s.first.addr(Family(f))) || buggy(s.last.addr(Family(f)))) {
					t.Fatalf("pool %s: buggy address free", ps.p.Name)
				}
				n = n.add(s.size())
				p := s
				prev = &p
				return true
			})
			if n != fs.free.n {
				t.Fatalf("pool %s: free count %v, spans hold %v", ps.p.Name, fs.free.n, n)
			}
		}
	}
}

// TestProperty runs random sequences of Assign, Release, Restore and SetPools over small
// pools (so addresses collide) and checks the invariants after every step, and that a
// replay of the same sequence gives the same addresses.
func TestProperty(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 40
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ops := randomOps(seed, 300)
			first := replay(t, ops)
			second := replay(t, ops)
			if diff := cmp.Diff(first, second, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("not deterministic (-first +second):\n%s", diff)
			}
		})
	}
}

type op struct {
	pools   []*model.Pool
	release string
	restore []netip.Addr
	req     Request
}

func replay(t *testing.T, ops []op) []string {
	a := New()
	var log []string
	for i, o := range ops {
		switch {
		case o.pools != nil:
			got, err := a.SetPools(o.pools)
			log = append(log, fmt.Sprint(got, err != nil))
		case o.release != "":
			a.Release(nn(o.release))
		case o.restore != nil:
			log = append(log, fmt.Sprint(a.Restore(o.req, o.restore)))
		default:
			before, had := a.Get(o.req.Service)
			al, err := a.Assign(o.req)
			log = append(log, fmt.Sprint(al.IPs, ReasonOf(err)))
			if err != nil && had && !cmp.Equal(before.IPs, al.IPs, cmpopts.SortSlices(func(x, y netip.Addr) bool { return x.Less(y) }), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })) {
				t.Fatalf("op %d: failed Assign changed %s from %v to %v", i, o.req.Service, before, al)
			}
			for _, ip := range al.IPs {
				if a.PoolOf(ip) == "" {
					t.Fatalf("op %d: %s given outside every pool", i, ip)
				}
			}
		}
		checkInvariants(t, a)
	}
	return log
}

func randomOps(seed uint64, n int) []op {
	r := rand.New(rand.NewPCG(seed, 7))
	v4 := func() string { return fmt.Sprintf("10.0.0.%d", r.IntN(24)) }
	v6 := func() string { return fmt.Sprintf("2001:db8::%x", r.IntN(24)) }
	randomPools := func() []*model.Pool {
		// Up to three disjoint pools cut from 10.0.0.0-10.0.0.23 and 2001:db8::0-17.
		var out []*model.Pool
		lo4, lo6 := 0, 0
		for i := range 1 + r.IntN(3) {
			p := &model.Pool{Name: fmt.Sprintf("p%d", r.IntN(4)*10+i), AutoAssign: r.IntN(4) != 0, AvoidBuggyIPs: r.IntN(3) == 0}
			if r.IntN(3) == 0 {
				p.Allocation = &model.ServiceAllocation{Priority: r.IntN(3)}
				if r.IntN(2) == 0 {
					p.Allocation.Namespaces = []string{"ns0"}
				}
			}
			if lo4 < 24 && r.IntN(4) != 0 {
				hi := min(23, lo4+r.IntN(8))
				p.Ranges = append(p.Ranges, model.Range{First: parse(fmt.Sprintf("10.0.0.%d", lo4)), Last: parse(fmt.Sprintf("10.0.0.%d", hi))})
				lo4 = hi + 1 + r.IntN(3)
			}
			if lo6 < 24 && r.IntN(3) != 0 {
				hi := min(23, lo6+r.IntN(8))
				p.Ranges = append(p.Ranges, model.Range{First: parse(fmt.Sprintf("2001:db8::%x", lo6)), Last: parse(fmt.Sprintf("2001:db8::%x", hi))})
				lo6 = hi + 1 + r.IntN(3)
			}
			out = append(out, p)
		}
		if r.IntN(10) == 0 { // sometimes overlapping: must be rejected
			out = append(out, &model.Pool{Name: "overlap", Ranges: []model.Range{{First: parse("10.0.0.0"), Last: parse("10.0.0.30")}}})
		}
		return out
	}
	randomReq := func() Request {
		rq := Request{Service: nn(fmt.Sprintf("ns%d/s%d", r.IntN(2), r.IntN(12)))}
		switch r.IntN(5) {
		case 0:
			rq.Families = []Family{IPv6}
		case 1:
			rq.Families, rq.Policy = []Family{IPv4, IPv6}, PreferDualStack
		case 2:
			rq.Families, rq.Policy = []Family{IPv6, IPv4}, RequireDualStack
		default:
			rq.Families = []Family{IPv4}
		}
		if r.IntN(2) == 0 {
			rq.SharingKey = []string{"k1", "k2"}[r.IntN(2)]
		}
		rq.Ports = []Port{{"TCP", int32(80 + r.IntN(3))}}
		if r.IntN(3) == 0 {
			rq.LocalTraffic = true
			rq.Selector = map[string]string{"app": fmt.Sprint(r.IntN(2))}
		}
		switch r.IntN(8) {
		case 0:
			rq.Pool = fmt.Sprintf("p%d", r.IntN(4)*10+r.IntN(3))
		case 1:
			for _, f := range rq.wanted() {
				if f == IPv4 {
					rq.IPs = append(rq.IPs, parse(v4()))
				} else {
					rq.IPs = append(rq.IPs, parse(v6()))
				}
			}
		}
		return rq
	}
	ops := []op{{pools: randomPools()}}
	for range n {
		switch x := r.IntN(20); {
		case x == 0:
			ops = append(ops, op{pools: randomPools()})
		case x < 5:
			ops = append(ops, op{release: fmt.Sprintf("ns%d/s%d", r.IntN(2), r.IntN(12))})
		case x == 5:
			ops = append(ops, op{req: randomReq(), restore: []netip.Addr{parse(v4()), parse(v6())}})
		default:
			ops = append(ops, op{req: randomReq()})
		}
	}
	return ops
}
