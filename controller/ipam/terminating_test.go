package ipam

import (
	"net/netip"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
)

// TestTerminatingPool: a pool being deleted keeps its holders' addresses and hands out
// nothing new (no fresh address, no share of a held one, no added family).
func TestTerminatingPool(t *testing.T) {
	a := New()
	pools := []*model.Pool{pool("a", "10.0.0.0/30"), pool("b", "10.0.1.0/30")}
	mustSet(t, a, pools...)
	assign := func(r Request, want string, reason Reason) {
		t.Helper()
		al, err := a.Assign(r)
		if ReasonOf(err) != reason {
			t.Fatalf("Assign(%s): %v, want reason %q", r.Service, err, reason)
		}
		if got := strs(al); want == "" && len(got) != 0 || want != "" && !slices.Equal(got, []string{want}) {
			t.Fatalf("Assign(%s) = %v, want %q", r.Service, got, want)
		}
	}
	s1 := req("s1", key("k"), ports(80))
	assign(s1, "10.0.0.0", "")
	a.SetTerminating("a")

	assign(s1, "10.0.0.0", "")                                // the holder keeps its address
	assign(req("s2"), "10.0.1.0", "")                         // auto-assign skips the pool
	assign(req("s3", key("k"), ports(81)), "10.0.1.1", "")    // no share of s1's address either
	assign(req("s4", inPool("a")), "", ReasonPoolTerminating) // nor by name
	assign(req("s5", ips("10.0.0.1")), "", ReasonPoolTerminating)
	// A holder whose request changes to another address of the pool keeps what it holds.
	al, err := a.Assign(req("s1", key("k"), ports(80), ips("10.0.0.2")))
	if ReasonOf(err) != ReasonPoolTerminating || !slices.Equal(strs(al), []string{"10.0.0.0"}) {
		t.Fatalf("s1 asking for 10.0.0.2: %v, %v; want PoolTerminating keeping 10.0.0.0", strs(al), err)
	}
	if got := a.ServicesIn("a"); !slices.Equal(got, []types.NamespacedName{nn("s1")}) {
		t.Fatalf("ServicesIn(a) = %v", got)
	}
	// Only terminating pools left: NoPool, saying why.
	a.SetTerminating("a", "b")
	if _, err := a.Assign(req("s6")); ReasonOf(err) != ReasonNoPool {
		t.Fatalf("s6: %v, want NoPool", err)
	}

	// The pool gains an IPv6 range while terminating: a dual-stack holder gets no new family.
	mustSet(t, a, pool("a", "10.0.0.0/30", "2001:db8::-2001:db8::3"), pool("b", "10.0.1.0/30"))
	a.SetTerminating("a")
	if _, err := a.Assign(req("s1", key("k"), ports(80), dual(PreferDualStack, IPv4, IPv6))); err != nil {
		t.Fatalf("PreferDualStack holder: %v", err)
	}
	if al, _ := a.Get(nn("s1")); !slices.Equal(strs(al), []string{"10.0.0.0"}) {
		t.Fatalf("s1 holds %v, want only 10.0.0.0", strs(al))
	}
	al, err = a.Assign(req("s1", key("k"), ports(80), dual(RequireDualStack, IPv4, IPv6)))
	if ReasonOf(err) != ReasonPoolTerminating || !slices.Equal(strs(al), []string{"10.0.0.0"}) {
		t.Fatalf("RequireDualStack holder: %v, %v; want PoolTerminating keeping 10.0.0.0", strs(al), err)
	}

	// Restore (a restart while the pool terminates) claims the held address.
	b := New()
	mustSet(t, b, pools...)
	b.SetTerminating("a")
	if got := b.Restore(req("s1"), []netipAddr{mustAddr("10.0.0.0")}); len(got) != 1 {
		t.Fatalf("Restore in a terminating pool claimed %v", got)
	}
	// The last holder goes: the pool has none, and its address is free again.
	b.Release(nn("s1"))
	if got := b.ServicesIn("a"); len(got) != 0 {
		t.Fatalf("ServicesIn(a) = %v after the release", got)
	}
	// SetPools clears the marks.
	mustSet(t, b, pools...)
	if al, err := b.Assign(req("s7", inPool("a"))); err != nil || !slices.Equal(strs(al), []string{"10.0.0.0"}) {
		t.Fatalf("after SetPools: %v, %v", strs(al), err)
	}
}

func mustAddr(s string) netipAddr { return netip.MustParseAddr(s) }
