package election

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
)

// Rank orders, computed independently (sha256 of name, 0x00, 16-byte IP) and written down:
//
//	203.0.113.10:     n4 n3 n1 n2
//	203.0.113.11:     n2 n1 n4 n3
//	2001:db8:100::10: n4 n2 n1 n3
var (
	ip10 = netip.MustParseAddr("203.0.113.10")
	ip11 = netip.MustParseAddr("203.0.113.11")
	ip6  = netip.MustParseAddr("2001:db8:100::10")
)

func TestRankIsSHA256OfNameAndIP(t *testing.T) {
	got := Rank("n4", ip10)
	want := "4c929a851c4ae1f5"
	if h := hex.EncodeToString(got[:8]); h != want {
		t.Fatalf("Rank(n4, %s) starts with %s, want %s", ip10, h, want)
	}
	// An IPv4-mapped IPv6 address ranks like the IPv4 address.
	if Rank("n4", netip.AddrFrom16(ip10.As16())) != got {
		t.Fatal("IPv4-mapped form ranks differently")
	}
	b := ip6.As16()
	if Rank("n4", ip6) != sha256.Sum256(append([]byte("n4\x00"), b[:]...)) {
		t.Fatal("IPv6 rank is not sha256(name, 0, ip)")
	}
}

func good(n string) Candidate {
	return Candidate{Node: n, Alive: true, Ready: true, Selected: true}
}

func all() []Candidate { return []Candidate{good("n1"), good("n2"), good("n3"), good("n4")} }

func with(c []Candidate, n string, f func(*Candidate)) []Candidate {
	out := append([]Candidate(nil), c...)
	for i := range out {
		if out[i].Node == n {
			f(&out[i])
		}
	}
	return out
}

var svcA = types.NamespacedName{Namespace: "default", Name: "a"}
var svcB = types.NamespacedName{Namespace: "default", Name: "b"}

func cluster(k types.NamespacedName) Service {
	return Service{Key: k, HasReadyEndpoint: true, ReadyNodes: map[string]bool{"n1": true}}
}

func local(k types.NamespacedName, nodes ...string) Service {
	s := Service{Key: k, LocalTraffic: true, ReadyNodes: map[string]bool{}}
	for _, n := range nodes {
		s.ReadyNodes[n] = true
		s.HasReadyEndpoint = true
	}
	return s
}

func TestElect(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want Result
	}{{
		name: "all eligible: first by hash",
		in:   Input{IP: ip10, Services: []Service{cluster(svcA)}, Candidates: all()},
		want: Result{IP: ip10, Status: Announced, Winner: "n4", Eligible: []string{"n4", "n3", "n1", "n2"}},
	}, {
		name: "other IP spreads to another node",
		in:   Input{IP: ip11, Services: []Service{cluster(svcA)}, Candidates: all()},
		want: Result{IP: ip11, Status: Announced, Winner: "n2", Eligible: []string{"n2", "n1", "n4", "n3"}},
	}, {
		name: "IPv6",
		in:   Input{IP: ip6, Services: []Service{cluster(svcA)}, Candidates: all()},
		want: Result{IP: ip6, Status: Announced, Winner: "n4", Eligible: []string{"n4", "n2", "n1", "n3"}},
	}, {
		name: "candidate order does not matter",
		in: Input{IP: ip10, Services: []Service{cluster(svcA)},
			Candidates: []Candidate{good("n2"), good("n1"), good("n4"), good("n3")}},
		want: Result{IP: ip10, Status: Announced, Winner: "n4", Eligible: []string{"n4", "n3", "n1", "n2"}},
	}, {
		name: "duplicate candidates are counted once",
		in: Input{IP: ip10, Services: []Service{cluster(svcA)},
			Candidates: []Candidate{good("n3"), good("n3"), good("n1")}},
		want: Result{IP: ip10, Status: Announced, Winner: "n3", Eligible: []string{"n3", "n1"}},
	}, {
		name: "dead member is skipped",
		in: Input{IP: ip10, Services: []Service{cluster(svcA)},
			Candidates: with(all(), "n4", func(c *Candidate) { c.Alive = false })},
		want: Result{IP: ip10, Status: Announced, Winner: "n3", Eligible: []string{"n3", "n1", "n2"}},
	}, {
		name: "not-ready node is skipped",
		in: Input{IP: ip10, Services: []Service{cluster(svcA)},
			Candidates: with(all(), "n4", func(c *Candidate) { c.Ready = false })},
		want: Result{IP: ip10, Status: Announced, Winner: "n3", Eligible: []string{"n3", "n1", "n2"}},
	}, {
		name: "excluded node is skipped",
		in: Input{IP: ip10, Services: []Service{cluster(svcA)},
			Candidates: with(all(), "n4", func(c *Candidate) { c.Excluded = true })},
		want: Result{IP: ip10, Status: Announced, Winner: "n3", Eligible: []string{"n3", "n1", "n2"}},
	}, {
		name: "node not selected by an L2Advertisement is skipped",
		in: Input{IP: ip10, Services: []Service{cluster(svcA)},
			Candidates: with(all(), "n4", func(c *Candidate) { c.Selected = false })},
		want: Result{IP: ip10, Status: Announced, Winner: "n3", Eligible: []string{"n3", "n1", "n2"}},
	}, {
		name: "empty node name is ignored",
		in: Input{IP: ip10, Services: []Service{cluster(svcA)},
			Candidates: []Candidate{good(""), good("n1")}},
		want: Result{IP: ip10, Status: Announced, Winner: "n1", Eligible: []string{"n1"}},
	}, {
		name: "no candidates",
		in:   Input{IP: ip10, Services: []Service{cluster(svcA)}},
		want: Result{IP: ip10, Status: NoEligibleNode},
	}, {
		name: "no node eligible",
		in: Input{IP: ip10, Services: []Service{cluster(svcA)},
			Candidates: []Candidate{{Node: "n1", Alive: true, Ready: true}, {Node: "n2", Selected: true, Ready: true}}},
		want: Result{IP: ip10, Status: NoEligibleNode},
	}, {
		name: "no service",
		in:   Input{IP: ip10, Candidates: all()},
		want: Result{IP: ip10, Status: NoService},
	}, {
		name: "service without ready endpoint is not announced",
		in:   Input{IP: ip10, Services: []Service{{Key: svcA}}, Candidates: all()},
		want: Result{IP: ip10, Status: NoReadyEndpoint},
	}, {
		name: "local service without ready endpoint is not announced",
		in:   Input{IP: ip10, Services: []Service{local(svcA)}, Candidates: all()},
		want: Result{IP: ip10, Status: NoReadyEndpoint},
	}, {
		name: "local: only nodes with a ready endpoint",
		in:   Input{IP: ip10, Services: []Service{local(svcA, "n1", "n2")}, Candidates: all()},
		want: Result{IP: ip10, Status: Announced, Winner: "n1", Rule: LocalAll, Eligible: []string{"n1", "n2"}},
	}, {
		name: "local: endpoint node that is not ready is skipped",
		in: Input{IP: ip10, Services: []Service{local(svcA, "n1", "n2")},
			Candidates: with(all(), "n1", func(c *Candidate) { c.Ready = false })},
		want: Result{IP: ip10, Status: Announced, Winner: "n2", Rule: LocalAll, Eligible: []string{"n2"}},
	}, {
		name: "local: endpoints only on ineligible nodes",
		in: Input{IP: ip10, Services: []Service{local(svcA, "n1")},
			Candidates: with(all(), "n1", func(c *Candidate) { c.Alive = false })},
		want: Result{IP: ip10, Status: NoEligibleNode, Rule: LocalAny},
	}, {
		name: "local: endpoints on a node that is not a candidate",
		in:   Input{IP: ip10, Services: []Service{local(svcA, "n9")}, Candidates: all()},
		want: Result{IP: ip10, Status: NoEligibleNode, Rule: LocalAny},
	}, {
		name: "shared: cluster services share the hash winner",
		in:   Input{IP: ip10, Services: []Service{cluster(svcA), cluster(svcB)}, Candidates: all()},
		want: Result{IP: ip10, Status: Announced, Winner: "n4", Eligible: []string{"n4", "n3", "n1", "n2"}},
	}, {
		name: "shared: one dead service does not block the IP",
		in:   Input{IP: ip10, Services: []Service{{Key: svcA}, cluster(svcB)}, Candidates: all()},
		want: Result{IP: ip10, Status: Announced, Winner: "n4", Eligible: []string{"n4", "n3", "n1", "n2"}},
	}, {
		name: "shared: local and cluster: local rule applies",
		in:   Input{IP: ip10, Services: []Service{cluster(svcA), local(svcB, "n2")}, Candidates: all()},
		want: Result{IP: ip10, Status: Announced, Winner: "n2", Rule: LocalAll, Eligible: []string{"n2"}},
	}, {
		name: "shared: local with no endpoints does not restrict the nodes",
		in:   Input{IP: ip10, Services: []Service{cluster(svcA), local(svcB)}, Candidates: all()},
		want: Result{IP: ip10, Status: Announced, Winner: "n4", Eligible: []string{"n4", "n3", "n1", "n2"}},
	}, {
		name: "shared: two local services: intersection",
		in: Input{IP: ip10, Services: []Service{local(svcA, "n1", "n2", "n3"), local(svcB, "n1", "n2")},
			Candidates: all()},
		want: Result{IP: ip10, Status: Announced, Winner: "n1", Rule: LocalAll, Eligible: []string{"n1", "n2"}},
	}, {
		name: "shared: two local services, disjoint: union",
		in:   Input{IP: ip10, Services: []Service{local(svcA, "n2"), local(svcB, "n3")}, Candidates: all()},
		want: Result{IP: ip10, Status: Announced, Winner: "n3", Rule: LocalAny, Eligible: []string{"n3", "n2"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Elect(tc.in)
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("Elect() mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// TestUnrelatedChangesDoNotMove changes one fact at a time that is not about the winner
// or a node ranked above it, and checks the winner stays.
func TestUnrelatedChangesDoNotMove(t *testing.T) {
	base := Input{IP: ip10, Services: []Service{cluster(svcA)}, Candidates: all()}
	if w := Elect(base).Winner; w != "n4" {
		t.Fatalf("base winner %q, want n4", w)
	}
	changes := map[string]func(in *Input){
		"lower-ranked node dies":     func(in *Input) { in.Candidates = with(in.Candidates, "n3", func(c *Candidate) { c.Alive = false }) },
		"lower-ranked node excluded": func(in *Input) { in.Candidates = with(in.Candidates, "n1", func(c *Candidate) { c.Excluded = true }) },
		"lower-ranked node removed":  func(in *Input) { in.Candidates = in.Candidates[1:] },
		"node added that ranks below": func(in *Input) {
			// "n5" ranks below "n4" for ip10: checked by Less below.
			in.Candidates = append(in.Candidates, good("n5"))
		},
		"another service shares the IP": func(in *Input) { in.Services = append(in.Services, cluster(svcB)) },
		"endpoints move between nodes": func(in *Input) {
			in.Services = []Service{{Key: svcA, HasReadyEndpoint: true, ReadyNodes: map[string]bool{"n2": true}}}
		},
	}
	if !Less("n4", "n5", ip10) {
		t.Fatal("test premise: n4 must rank before n5 for ip10")
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			in := base
			in.Candidates = append([]Candidate(nil), base.Candidates...)
			in.Services = append([]Service(nil), base.Services...)
			change(&in)
			if w := Elect(in).Winner; w != "n4" {
				t.Errorf("winner moved to %q", w)
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{Announced: "Announced", NoService: "NoService",
		NoReadyEndpoint: "NoReadyEndpoint", NoEligibleNode: "NoEligibleNode", Status(0): "Unknown"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}
