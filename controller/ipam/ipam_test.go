package ipam

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
)

// step is one call on the Allocator: SetPools (pools != nil), Release (release != ""), or
// Assign (req.Service set). want is the Service's addresses afterwards.
type step struct {
	pools    []*model.Pool
	released []string // Services SetPools reports
	release  string
	req      Request
	want     []string
	pool     string // the allocation's pool, checked when set
	err      Reason
	inUseBy  string
}

func run(t *testing.T, steps []step) {
	t.Helper()
	a := New()
	for i, s := range steps {
		switch {
		case s.pools != nil:
			got, err := a.SetPools(s.pools)
			if s.err != "" {
				if err == nil {
					t.Fatalf("step %d: SetPools: no error, want one", i)
				}
				continue
			}
			if err != nil {
				t.Fatalf("step %d: SetPools: %v", i, err)
			}
			var names []string
			for _, k := range got {
				names = append(names, k.String())
			}
			if diff := cmp.Diff(s.released, names, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("step %d: released (-want +got):\n%s", i, diff)
			}
		case s.release != "":
			a.Release(nn(s.release))
			if _, ok := a.Get(nn(s.release)); ok {
				t.Fatalf("step %d: %s still holds addresses", i, s.release)
			}
		default:
			al, err := a.Assign(s.req)
			if got := ReasonOf(err); got != s.err {
				t.Fatalf("step %d: Assign(%s): reason %q (%v), want %q", i, s.req.Service, got, err, s.err)
			}
			if s.inUseBy != "" {
				var e *Error
				if !errors.As(err, &e) || e.InUseBy != nn(s.inUseBy) {
					t.Fatalf("step %d: %v, want in use by %s", i, err, s.inUseBy)
				}
			}
			if diff := cmp.Diff(s.want, strs(al), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("step %d: Assign(%s) (-want +got):\n%s", i, s.req.Service, diff)
			}
			if s.pool != "" && al.Pool() != s.pool {
				t.Fatalf("step %d: pool %q, want %q", i, al.Pool(), s.pool)
			}
		}
		checkInvariants(t, a)
	}
}

func TestAssign(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"lowest free first, deterministic", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/30")}},
			{req: req("s1"), want: []string{"10.0.0.0"}},
			{req: req("s2"), want: []string{"10.0.0.1"}},
			{req: req("s1"), want: []string{"10.0.0.0"}}, // stable
			{release: "s1"},
			{req: req("s3"), want: []string{"10.0.0.0"}}, // freed address reused
		}},
		{"exhaustion then recovery", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/31")}},
			{req: req("s1"), want: []string{"10.0.0.0"}},
			{req: req("s2"), want: []string{"10.0.0.1"}},
			{req: req("s3"), err: ReasonPoolExhausted},
			{release: "s1"},
			{req: req("s3"), want: []string{"10.0.0.0"}},
		}},
		{"ranges and several ranges in one pool", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.5-10.0.0.5", "10.0.1.7-10.0.1.8")}},
			{req: req("s1"), want: []string{"10.0.0.5"}},
			{req: req("s2"), want: []string{"10.0.1.7"}},
			{req: req("s3"), want: []string{"10.0.1.8"}},
			{req: req("s4"), err: ReasonPoolExhausted},
		}},
		{"avoidBuggyIPs skips .0 and .255", []step{
			{pools: []*model.Pool{avoid(pool("a", "10.0.0.254-10.0.1.1"))}},
			{req: req("s1"), want: []string{"10.0.0.254"}},
			{req: req("s2"), want: []string{"10.0.1.1"}},
			{req: req("s3"), err: ReasonPoolExhausted},
			{req: req("s4", ips("10.0.1.0")), err: ReasonIPNotInPool},
		}},
		{"avoidBuggyIPs does not touch IPv6", []step{
			{pools: []*model.Pool{avoid(pool("a", "2001:db8::/127"))}},
			{req: req("s1", v6()), want: []string{"2001:db8::"}},
		}},
		{"autoAssign false only on request", []step{
			{pools: []*model.Pool{manual(pool("m", "10.0.0.0/30"))}},
			{req: req("s1"), err: ReasonNoPool},
			{req: req("s2", inPool("m")), want: []string{"10.0.0.0"}, pool: "m"},
			{req: req("s3", ips("10.0.0.3")), want: []string{"10.0.0.3"}, pool: "m"},
		}},
		{"auto pools before manual, named pool wins", []step{
			{pools: []*model.Pool{manual(pool("a", "10.0.0.0/30")), pool("b", "10.0.1.0/30")}},
			{req: req("s1"), want: []string{"10.0.1.0"}, pool: "b"},
			{req: req("s2", inPool("a")), want: []string{"10.0.0.0"}, pool: "a"},
			{req: req("s3", inPool("zzz")), err: ReasonPoolNotFound},
		}},
		{"ties broken by name", []step{
			{pools: []*model.Pool{pool("b", "10.0.1.0/30"), pool("a", "10.0.0.0/30")}},
			{req: req("s1"), want: []string{"10.0.0.0"}, pool: "a"},
		}},
		{"priority orders pools; lower number first; unset last", []step{
			{pools: []*model.Pool{pool("any", "10.0.0.0/30"), prio(pool("p0", "10.0.3.0/30"), 0, "default"), prio(pool("p2", "10.0.2.0/30"), 2), prio(pool("p1", "10.0.1.0/31"), 1)}},
			{req: req("s1"), want: []string{"10.0.1.0"}, pool: "p1"},
			{req: req("s2"), want: []string{"10.0.1.1"}, pool: "p1"},
			{req: req("s3"), want: []string{"10.0.2.0"}, pool: "p2"},
			{req: req("other/s4"), want: []string{"10.0.2.1"}, pool: "p2"},
			{req: req("s5"), want: []string{"10.0.2.2"}, pool: "p2"},
			{req: req("s6"), want: []string{"10.0.2.3"}, pool: "p2"},
			{req: req("s7"), want: []string{"10.0.3.0"}, pool: "p0"},        // namespace default matches
			{req: req("other/s8"), want: []string{"10.0.0.0"}, pool: "any"}, // p0 does not serve "other"
		}},
		{"namespaces restrict a pool", []step{
			{pools: []*model.Pool{prio(pool("team", "10.0.0.0/30"), 1, "team")}},
			{req: req("team/s1"), want: []string{"10.0.0.0"}},
			{req: req("other/s2"), err: ReasonNoPool},
			{req: req("other/s3", inPool("team")), err: ReasonPoolNotAllowed},
			{req: req("other/s4", ips("10.0.0.2")), err: ReasonPoolNotAllowed},
		}},
		{"service and namespace selectors", []step{
			{pools: []*model.Pool{svcSel(prio(pool("gold", "10.0.0.0/30"), 1), "tier=gold"), nsSel(prio(pool("prod", "10.0.1.0/30"), 2), "env=prod"), pool("rest", "10.0.2.0/30")}},
			{req: req("s1", lbl("tier", "gold")), want: []string{"10.0.0.0"}, pool: "gold"},
			{req: req("s2", nsLbl("env", "prod")), want: []string{"10.0.1.0"}, pool: "prod"},
			{req: req("s3", lbl("tier", "gold"), nsLbl("env", "prod")), want: []string{"10.0.0.1"}, pool: "gold"},
			{req: req("s4"), want: []string{"10.0.2.0"}, pool: "rest"},
		}},
		{"requested IP", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/29")}},
			{req: req("s1", ips("10.0.0.5")), want: []string{"10.0.0.5"}},
			{req: req("s2", ips("10.0.0.5")), err: ReasonIPInUse, inUseBy: "s1"},
			{req: req("s3", ips("192.0.2.1")), err: ReasonIPNotInPool},
			{req: req("s4"), want: []string{"10.0.0.0"}},
			{req: req("s1", ips("10.0.0.6")), want: []string{"10.0.0.6"}},                                    // changed request moves it
			{req: req("s2", ips("10.0.0.5")), want: []string{"10.0.0.5"}},                                    // now free
			{req: req("s1", ips("10.0.0.0")), want: []string{"10.0.0.6"}, err: ReasonIPInUse, inUseBy: "s4"}, // failed change keeps the old IP
			{req: req("s5", ips("10.0.0.1"), inPool("b")), err: ReasonConflictingRequests},
		}},
		{"requested IPs in two pools", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/30"), pool("b", "2001:db8::-2001:db8::3")}},
			{req: req("s1", dual(RequireDualStack, IPv4, IPv6), ips("10.0.0.1", "2001:db8::1")), err: ReasonConflictingRequests},
		}},
		{"request change is re-evaluated: pool", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/30"), pool("b", "10.0.1.0/30")}},
			{req: req("s1"), want: []string{"10.0.0.0"}},
			{req: req("s1", inPool("b")), want: []string{"10.0.1.0"}, pool: "b"},
			{req: req("s2"), want: []string{"10.0.0.0"}},
		}},
		{"family not offered", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/30")}},
			{req: req("s1", v6()), err: ReasonFamilyNotOffered},
			{req: req("s2", dual(RequireDualStack, IPv4, IPv6)), err: ReasonFamilyNotOffered},
			{req: req("s3", dual(PreferDualStack, IPv4, IPv6)), want: []string{"10.0.0.0"}},
			{req: req("s4", dual(PreferDualStack, IPv6, IPv4)), want: []string{"10.0.0.1"}},
		}},
		{"dual-stack in ipFamilies order, one pool", []step{
			{pools: []*model.Pool{pool("v4only", "10.0.9.0/30"), pool("both", "10.0.0.0/30", "2001:db8::-2001:db8::3")}},
			{req: req("s1", dual(RequireDualStack, IPv6, IPv4)), want: []string{"2001:db8::", "10.0.0.0"}, pool: "both"},
			{req: req("s2", dual(PreferDualStack, IPv4, IPv6)), want: []string{"10.0.0.1", "2001:db8::1"}, pool: "both"},
			{req: req("s3", dual(SingleStack, IPv6)), want: []string{"2001:db8::2"}},
			{req: req("s4"), want: []string{"10.0.0.2"}, pool: "both"},
			{req: req("s5", dual(RequireDualStack, IPv4, IPv6), ips("10.0.0.3", "2001:db8::3")), want: []string{"10.0.0.3", "2001:db8::3"}},
			{req: req("s6", dual(RequireDualStack, IPv4, IPv6)), err: ReasonPoolExhausted},
			{req: req("s7", dual(PreferDualStack, IPv4, IPv6)), want: []string{"10.0.9.0"}, pool: "v4only"},
		}},
		{"dual-stack missing family filled from the same pool", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/30")}},
			{req: req("s1", dual(PreferDualStack, IPv4, IPv6)), want: []string{"10.0.0.0"}},
			{pools: []*model.Pool{pool("a", "10.0.0.0/30", "2001:db8::-2001:db8::3")}},
			{req: req("s1", dual(PreferDualStack, IPv4, IPv6)), want: []string{"10.0.0.0", "2001:db8::"}},
		}},
		{"sharing: same key, different ports", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/29")}},
			{req: req("s1", key("k"), ports(80)), want: []string{"10.0.0.0"}},
			{req: req("s2", key("k"), ports(443)), want: []string{"10.0.0.0"}},
			{req: req("s3", key("k"), ports(80)), want: []string{"10.0.0.1"}},          // port clash: another IP
			{req: req("s4", key("k"), ports(53), udp(53)), want: []string{"10.0.0.0"}}, // TCP 53 and UDP 53 fit
			{req: req("s5", key("other"), ports(8080)), want: []string{"10.0.0.2"}},
			{req: req("s6", ports(9090)), want: []string{"10.0.0.3"}},
			{req: req("s7", key("k"), ports(443), ips("10.0.0.0")), err: ReasonIPInUse, inUseBy: "s2"},
			{req: req("s8", key("k"), ports(8443), ips("10.0.0.0")), want: []string{"10.0.0.0"}},
			{release: "s1"},
			{release: "s2"},
			{release: "s4"},
			{req: req("s9"), want: []string{"10.0.0.4"}}, // still held by s8
			{release: "s8"},
			{req: req("s10"), want: []string{"10.0.0.0"}},
		}},
		{"sharing: traffic policy and selector", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/29")}},
			{req: req("s1", key("k"), ports(80), local("web")), want: []string{"10.0.0.0"}},
			{req: req("s2", key("k"), ports(81), local("web")), want: []string{"10.0.0.0"}},
			{req: req("s3", key("k"), ports(82), local("db")), want: []string{"10.0.0.1"}},
			{req: req("s4", key("k"), ports(83)), want: []string{"10.0.0.2"}},
			{req: req("s5", key("k"), ports(84)), want: []string{"10.0.0.2"}},
		}},
		{"sharing: a port change that clashes moves the Service", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/29")}},
			{req: req("s1", key("k"), ports(80)), want: []string{"10.0.0.0"}},
			{req: req("s2", key("k"), ports(81)), want: []string{"10.0.0.0"}},
			{req: req("s2", key("k"), ports(80)), want: []string{"10.0.0.1"}},
			{req: req("s2", key("j"), ports(80)), want: []string{"10.0.0.1"}}, // sole user: key change keeps it
			{req: req("s3", key("j"), ports(90)), want: []string{"10.0.0.1"}},
		}},
		{"sharing prefers a shared IP in a later pool", []step{
			{pools: []*model.Pool{prio(pool("first", "10.0.0.0/30"), 1), prio(pool("second", "10.0.1.0/30"), 2)}},
			{req: req("s1", key("k"), inPool("second")), want: []string{"10.0.1.0"}},
			{req: req("s2", key("k"), ports(81)), want: []string{"10.0.1.0"}},
		}},
		{"dual-stack sharing", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/30", "2001:db8::-2001:db8::3")}},
			{req: req("s1", key("k"), ports(80), dual(RequireDualStack, IPv4, IPv6)), want: []string{"10.0.0.0", "2001:db8::"}},
			{req: req("s2", key("k"), ports(81), dual(RequireDualStack, IPv6, IPv4)), want: []string{"2001:db8::", "10.0.0.0"}},
			{req: req("s3", key("k"), ports(82), v6()), want: []string{"2001:db8::"}},
		}},
		{"pool shrink releases only uncovered IPs", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/29")}},
			{req: req("s1"), want: []string{"10.0.0.0"}},
			{req: req("s2"), want: []string{"10.0.0.1"}},
			{req: req("s3"), want: []string{"10.0.0.2"}},
			{req: req("s4"), want: []string{"10.0.0.3"}},
			{pools: []*model.Pool{pool("a", "10.0.0.0/31", "10.0.0.3-10.0.0.5")}, released: []string{"default/s3"}},
			{req: req("s1"), want: []string{"10.0.0.0"}},
			{req: req("s4"), want: []string{"10.0.0.3"}},
			{req: req("s3"), want: []string{"10.0.0.4"}},
		}},
		{"pool removed, IPs covered by a new pool stay", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/30"), pool("b", "10.0.1.0/30")}},
			{req: req("s1"), want: []string{"10.0.0.0"}, pool: "a"},
			{req: req("s2", inPool("b")), want: []string{"10.0.1.0"}, pool: "b"},
			{pools: []*model.Pool{pool("c", "10.0.0.0/29")}, released: []string{"default/s1", "default/s2"}},
			{req: req("s1"), want: []string{"10.0.0.0"}, pool: "c"},
			{req: req("s2", inPool("b")), err: ReasonPoolNotFound},
			{req: req("s2"), want: []string{"10.0.0.1"}, pool: "c"},
		}},
		{"overlapping pools rejected, old pools kept", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/30")}},
			{req: req("s1"), want: []string{"10.0.0.0"}},
			{pools: []*model.Pool{pool("a", "10.0.0.0/30"), pool("b", "10.0.0.2-10.0.0.9")}, err: "x"},
			{req: req("s2"), want: []string{"10.0.0.1"}, pool: "a"},
		}},
		{"dual-stack loses one family on shrink, gets it back", []step{
			{pools: []*model.Pool{pool("a", "10.0.0.0/30", "2001:db8::-2001:db8::3")}},
			{req: req("s1", dual(RequireDualStack, IPv4, IPv6)), want: []string{"10.0.0.0", "2001:db8::"}},
			{pools: []*model.Pool{pool("a", "10.0.0.0/30", "2001:db8::1-2001:db8::3")}, released: []string{"default/s1"}},
			{req: req("s1", dual(RequireDualStack, IPv4, IPv6)), want: []string{"10.0.0.0", "2001:db8::1"}},
		}},
		{"IPv6 /64 and the top of the address space", []step{
			// The /64's first address is its subnet-router anycast address: never handed out.
			// The top of the IPv6 space is multicast: never handed out either; the top of the
			// IPv4 space is 255.255.255.255, limited broadcast.
			{pools: []*model.Pool{pool("a", "2001:db8:100::/64"), pool("top", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"), pool("top4", "255.255.255.254/31")}},
			{req: req("s1", v6()), want: []string{"2001:db8:100::1"}},
			{req: req("s2", v6(), ips("2001:db8:100::ffff:ffff:ffff:ffff")), want: []string{"2001:db8:100:0:ffff:ffff:ffff:ffff"}},
			{req: req("s3", v6(), inPool("top")), err: ReasonPoolExhausted},
			{req: req("s4", inPool("top4")), want: []string{"255.255.255.254"}},
			{req: req("s5", inPool("top4")), err: ReasonPoolExhausted},
			{pools: []*model.Pool{pool("a", "2001:db8:100::/64"), pool("top", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"), pool("top4", "255.255.255.254/31")}},
			{release: "s4"},
			{req: req("s5", inPool("top4")), want: []string{"255.255.255.254"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { run(t, tc.steps) })
	}
}

func TestRestore(t *testing.T) {
	a := New()
	mustSet(t, a, pool("a", "10.0.0.0/29", "2001:db8::/126"))
	mustAddr := func(s ...string) []string { return s }
	restore := func(r Request, addrs ...string) []string {
		var in []netipAddr
		for _, s := range addrs {
			in = append(in, parse(s))
		}
		var out []string
		for _, ip := range a.Restore(r, in) {
			out = append(out, ip.String())
		}
		return out
	}
	if got := restore(req("s1"), "10.0.0.5"); !cmp.Equal(got, mustAddr("10.0.0.5")) {
		t.Fatalf("s1: %v", got)
	}
	// An incompatible claim of the same IP loses; IPs outside every pool are not claimed.
	if got := restore(req("s2"), "10.0.0.5"); len(got) != 0 {
		t.Fatalf("s2 claimed %v", got)
	}
	if got := restore(req("s3"), "192.0.2.1"); len(got) != 0 {
		t.Fatalf("s3 claimed %v", got)
	}
	if got := restore(req("s4", dual(RequireDualStack, IPv6, IPv4)), "10.0.0.1", "2001:db8::2"); !cmp.Equal(got, mustAddr("2001:db8::2", "10.0.0.1")) {
		t.Fatalf("s4: %v", got)
	}
	// Shared IPs are restored for compatible Services.
	restore(req("s5", key("k"), ports(1)), "10.0.0.3")
	if got := restore(req("s6", key("k"), ports(2)), "10.0.0.3"); !cmp.Equal(got, mustAddr("10.0.0.3")) {
		t.Fatalf("s6: %v", got)
	}
	checkInvariants(t, a)
	// Assign afterwards keeps restored IPs and never hands them to others.
	al, err := a.Assign(req("s1"))
	if err != nil || al.IPs[0].String() != "10.0.0.5" {
		t.Fatalf("s1 after restore: %v %v", al, err)
	}
	al, err = a.Assign(req("s2"))
	if err != nil || al.IPs[0].String() != "10.0.0.0" {
		t.Fatalf("s2 after restore: %v %v", al, err)
	}
	al, err = a.Assign(req("s3"))
	if err != nil || al.IPs[0].String() != "10.0.0.2" {
		t.Fatalf("s3 after restore: %v %v", al, err)
	}
	checkInvariants(t, a)
}

func TestStats(t *testing.T) {
	a := New()
	mustSet(t, a, avoid(pool("a", "10.0.0.0/24", "2001:db8::/64")), pool("b", "10.0.1.0/31"))
	for i, r := range []Request{req("s1"), req("s2", v6()), req("s3", key("k")), req("s4", key("k"), ports(1))} {
		if _, err := a.Assign(r); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
	}
	st := a.Stats()
	if got := st["a"].IPv4; !got.Offered || got.InUse != 2 || got.Available.Uint64() != 252 {
		t.Errorf("a/IPv4 = %+v (available %s)", got, got.Available)
	}
	// 2^64 less the subnet-router anycast address 2001:db8:: and the one in use.
	if got := st["a"].IPv6; !got.Offered || got.InUse != 1 || got.Available.String() != "18446744073709551614" {
		t.Errorf("a/IPv6 = %+v (available %s)", got, got.Available)
	}
	if got := st["b"]; got.IPv6.Offered || got.IPv4.Available.Uint64() != 2 {
		t.Errorf("b = %+v", got)
	}
}

func TestServicesIn(t *testing.T) {
	a := New()
	mustSet(t, a, pool("a", "10.0.0.0/30"), pool("b", "10.0.1.0/30", "2001:db8::/126"), pool("c", "10.0.2.0/30"))
	for _, r := range []Request{
		req("ns2/s1", inPool("a")), req("ns1/s2", inPool("a")),
		req("s3", inPool("b"), dual(RequireDualStack, IPv6, IPv4)),
		req("s4", inPool("a"), key("k"), ports(1)), req("s5", ips("10.0.0.3"), key("k"), ports(2)),
	} {
		if _, err := a.Assign(r); err != nil {
			t.Fatalf("%v: %v", r.Service, err)
		}
	}
	names := func(ks []types.NamespacedName) []string {
		var out []string
		for _, k := range ks {
			out = append(out, k.String())
		}
		return out
	}
	for _, tc := range []struct {
		pools []string
		want  []string
	}{
		{nil, nil},
		{[]string{"c"}, nil},
		{[]string{"gone"}, nil},
		{[]string{"a"}, []string{"default/s4", "default/s5", "ns1/s2", "ns2/s1"}},
		{[]string{"b"}, []string{"default/s3"}},
		{[]string{"b", "a"}, []string{"default/s3", "default/s4", "default/s5", "ns1/s2", "ns2/s1"}},
	} {
		if got := names(a.ServicesIn(tc.pools...)); !cmp.Equal(got, tc.want) {
			t.Errorf("ServicesIn(%v) = %v, want %v", tc.pools, got, tc.want)
		}
	}
}
