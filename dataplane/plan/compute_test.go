package plan

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/dataplane/maglev"
)

var (
	web  = types.NamespacedName{Namespace: "default", Name: "web"}
	dns  = types.NamespacedName{Namespace: "kube-system", Name: "dns"}
	lb4  = netip.MustParseAddr("203.0.113.10")
	lb6  = netip.MustParseAddr("2001:db8:100::10")
	lb4b = netip.MustParseAddr("203.0.113.11")
)

// eq compares the netip types by value.
var eq = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func ep(addr, node string, port uint16, ready, serving, terminating bool) Endpoint {
	return Endpoint{Addr: netip.MustParseAddr(addr), Node: node, Ports: map[string]uint16{"http": port},
		Ready: ready, Serving: serving, Terminating: terminating}
}

func readyEP(addr, node string) Endpoint { return ep(addr, node, 8080, true, true, false) }

func httpSvc(eps ...Endpoint) Service {
	return Service{Name: web, LBIPs: []netip.Addr{lb4}, Ports: []Port{{Name: "http", Protocol: TCP, Port: 80, NodePort: 30080}},
		Endpoints: eps}
}

// table builds the expected Maglev table straight from the maglev package.
func table(t *testing.T, backends ...string) []netip.AddrPort {
	t.Helper()
	m, err := maglev.Size(len(backends), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var bs []maglev.Backend
	for _, b := range backends {
		bs = append(bs, maglev.Backend{ID: b})
	}
	tab, err := maglev.Build(bs, m)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]netip.AddrPort, len(tab.Entries))
	for i, e := range tab.Entries {
		out[i] = ap(tab.Backends[e].ID)
	}
	return out
}

func empty() Plan {
	return Plan{Frontends: map[Frontend]Dispatch{}, Tables: map[uint32][]netip.AddrPort{}, Reject: map[Frontend]bool{},
		Ranged: map[Frontend]bool{}, Allowed: map[Range]bool{}, Masquerade: map[Frontend]bool{},
		Remote: map[netip.Addr]bool{}, IDs: map[Key]uint32{}}
}

var fe80 = Frontend{Addr: lb4, Protocol: TCP, Port: 80}

func TestCompute(t *testing.T) {
	alive := map[string]bool{"n1": true, "n2": true, "n3": true}
	key := Key{Service: web, Protocol: TCP, Port: 80}
	tests := []struct {
		name  string
		in    Input
		want  func(t *testing.T) Plan
		isErr bool
	}{
		{
			name: "cluster: every ready endpoint, remote ones masqueraded",
			in: Input{Node: "n1", Alive: alive, Services: []Service{httpSvc(
				readyEP("198.18.1.2", "n1"), readyEP("198.18.2.2", "n2"), readyEP("198.18.3.2", "n3"))}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 509}
				p.Tables[1] = table(t, "198.18.1.2:8080", "198.18.2.2:8080", "198.18.3.2:8080")
				p.Masquerade[fe80] = true
				p.Remote[netip.MustParseAddr("198.18.2.2")] = true
				p.Remote[netip.MustParseAddr("198.18.3.2")] = true
				p.IDs[key] = 1
				return p
			},
		},
		{
			name: "a dead node's endpoints are dropped",
			in: Input{Node: "n1", Alive: map[string]bool{"n1": true, "n2": true}, Services: []Service{httpSvc(
				readyEP("198.18.1.2", "n1"), readyEP("198.18.2.2", "n2"), readyEP("198.18.3.2", "n3"))}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 251}
				p.Tables[1] = table(t, "198.18.1.2:8080", "198.18.2.2:8080")
				p.Masquerade[fe80] = true
				p.Remote[netip.MustParseAddr("198.18.2.2")] = true
				p.IDs[key] = 1
				return p
			},
		},
		{
			name: "only dead nodes: reject",
			in: Input{Node: "n1", Alive: map[string]bool{"n1": true}, Services: []Service{httpSvc(
				readyEP("198.18.2.2", "n2"), readyEP("198.18.3.2", "n3"))}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Reject[fe80] = true
				return p
			},
		},
		{
			name: "local: only this node's endpoints, no masquerade",
			in: Input{Node: "n2", Alive: alive, Services: []Service{func() Service {
				s := httpSvc(readyEP("198.18.1.2", "n1"), readyEP("198.18.2.2", "n2"), readyEP("198.18.2.3", "n2"))
				s.TrafficPolicy = PolicyLocal
				return s
			}()}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 251}
				p.Tables[1] = table(t, "198.18.2.2:8080", "198.18.2.3:8080")
				p.IDs[key] = 1
				return p
			},
		},
		{
			name: "local without a local endpoint: reject",
			in: Input{Node: "n3", Alive: alive, Services: []Service{func() Service {
				s := httpSvc(readyEP("198.18.1.2", "n1"))
				s.TrafficPolicy = PolicyLocal
				return s
			}()}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Reject[fe80] = true
				return p
			},
		},
		{
			name: "terminating endpoints only used when none is ready",
			in: Input{Node: "n1", Alive: alive, Services: []Service{httpSvc(
				readyEP("198.18.1.2", "n1"), ep("198.18.2.2", "n2", 8080, false, true, true))}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 251}
				p.Tables[1] = table(t, "198.18.1.2:8080")
				p.Masquerade[fe80] = true
				p.IDs[key] = 1
				return p
			},
		},
		{
			name: "fallback to serving-terminating, not to non-serving ones",
			in: Input{Node: "n1", Alive: alive, Services: []Service{httpSvc(
				ep("198.18.1.2", "n1", 8080, false, false, true), ep("198.18.2.2", "n2", 8080, false, true, true),
				ep("198.18.3.2", "n3", 8080, false, false, false))}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 251}
				p.Tables[1] = table(t, "198.18.2.2:8080")
				p.Masquerade[fe80] = true
				p.Remote[netip.MustParseAddr("198.18.2.2")] = true
				p.IDs[key] = 1
				return p
			},
		},
		{
			name: "no endpoint at all: reject; source ranges still enforced",
			in: Input{Node: "n1", Alive: alive, Services: []Service{func() Service {
				s := httpSvc()
				s.SourceRanges = []netip.Prefix{netip.MustParsePrefix("198.51.100.7/24"), netip.MustParsePrefix("2001:db8:5::/48")}
				return s
			}()}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Reject[fe80] = true
				p.Ranged[fe80] = true
				p.Allowed[Range{Frontend: fe80, Source: netip.MustParsePrefix("198.51.100.0/24")}] = true
				return p
			},
		},
		{
			name: "mode off: nothing",
			in: Input{Node: "n1", Alive: alive, Services: []Service{func() Service {
				s := httpSvc(readyEP("198.18.1.2", "n1"))
				s.Mode = ModeOff
				return s
			}()}},
			want: func(*testing.T) Plan { return empty() },
		},
		{
			name: "nodeport mode: NodePorts of nodes with ready endpoints, masqueraded",
			in: Input{Node: "n1", Alive: alive, NodeAddrs: map[string][]netip.Addr{
				"n1": {netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8:1::11")},
				"n2": {netip.MustParseAddr("2001:db8:1::12"), netip.MustParseAddr("192.0.2.12")},
				"n3": {netip.MustParseAddr("192.0.2.13")},
			}, Services: []Service{func() Service {
				s := httpSvc(readyEP("198.18.2.2", "n2"), readyEP("198.18.2.3", "n2"), readyEP("198.18.3.2", "n3"),
					ep("198.18.1.2", "n1", 8080, false, false, false))
				s.Mode = ModeNodePort
				return s
			}()}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 251}
				p.Tables[1] = table(t, "192.0.2.12:30080", "192.0.2.13:30080")
				p.Masquerade[fe80] = true
				p.Remote[netip.MustParseAddr("192.0.2.12")] = true
				p.Remote[netip.MustParseAddr("192.0.2.13")] = true
				p.IDs[key] = 1
				return p
			},
		},
		{
			name: "nodeport mode: this node's own endpoints directly, not its own NodePort",
			in: Input{Node: "n1", Alive: alive, NodeAddrs: map[string][]netip.Addr{
				"n1": {netip.MustParseAddr("192.0.2.11")},
				"n2": {netip.MustParseAddr("192.0.2.12")},
			}, Services: []Service{func() Service {
				s := httpSvc(readyEP("198.18.1.2", "n1"), readyEP("198.18.2.2", "n2"))
				s.Mode = ModeNodePort
				return s
			}()}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 251}
				p.Tables[1] = table(t, "192.0.2.12:30080", "198.18.1.2:8080")
				p.Masquerade[fe80] = true
				p.Remote[netip.MustParseAddr("192.0.2.12")] = true
				p.IDs[key] = 1
				return p
			},
		},
		{
			name: "dual stack, affinity, two IPs of one family share a table",
			in: Input{Node: "n1", Alive: alive, Services: []Service{func() Service {
				s := httpSvc(readyEP("198.18.1.2", "n1"), readyEP("2001:db8:18::2", "n1"))
				s.LBIPs = []netip.Addr{lb6, lb4b, lb4}
				s.ClientIPAffinity = true
				s.TrafficPolicy = PolicyLocal
				return s
			}()}},
			want: func(t *testing.T) Plan {
				p := empty()
				fe6 := Frontend{Addr: lb6, Protocol: TCP, Port: 80}
				feb := Frontend{Addr: lb4b, Protocol: TCP, Port: 80}
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 251, Affinity: true}
				p.Frontends[feb] = Dispatch{ID: 1, Size: 251, Affinity: true}
				p.Frontends[fe6] = Dispatch{ID: 2, Size: 251, Affinity: true}
				p.Tables[1] = table(t, "198.18.1.2:8080")
				p.Tables[2] = table(t, "[2001:db8:18::2]:8080")
				p.IDs[key] = 1
				p.IDs[Key{Service: web, Protocol: TCP, Port: 80, IPv6: true}] = 2
				return p
			},
		},
		{
			name: "a frontend claimed twice goes to the first service by name",
			in: Input{Node: "n1", Alive: alive, Services: []Service{
				httpSvc(readyEP("198.18.1.2", "n1")),
				func() Service {
					s := httpSvc(readyEP("198.18.1.9", "n1"))
					s.Name = dns
					return s
				}(),
			}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 251}
				p.Tables[1] = table(t, "198.18.1.2:8080")
				p.Masquerade[fe80] = true
				p.IDs[key] = 1
				return p
			},
			isErr: true,
		},
		{
			name: "endpoints without the port's name are skipped; ports resolved per endpoint",
			in: Input{Node: "n1", Alive: alive, Services: []Service{httpSvc(
				readyEP("198.18.1.2", "n1"), ep("198.18.1.3", "n1", 9090, true, true, false),
				Endpoint{Addr: netip.MustParseAddr("198.18.1.4"), Node: "n1", Ports: map[string]uint16{"metrics": 9100}, Ready: true})}},
			want: func(t *testing.T) Plan {
				p := empty()
				p.Frontends[fe80] = Dispatch{ID: 1, Size: 251}
				p.Tables[1] = table(t, "198.18.1.2:8080", "198.18.1.3:9090")
				p.Masquerade[fe80] = true
				p.IDs[key] = 1
				return p
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compute(tc.in)
			if (err != nil) != tc.isErr {
				t.Fatalf("error = %v, want error %v", err, tc.isErr)
			}
			if diff := cmp.Diff(tc.want(t), got, eq); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// Every node computes the same table for a Cluster service, whatever order it sees
// endpoints in: only Remote differs.
func TestComputeSameTableOnEveryNode(t *testing.T) {
	eps := []Endpoint{readyEP("198.18.1.2", "n1"), readyEP("198.18.2.2", "n2"), readyEP("198.18.3.2", "n3"), readyEP("198.18.3.3", "n3")}
	alive := map[string]bool{"n1": true, "n2": true, "n3": true}
	var first Plan
	for i, node := range []string{"n1", "n2", "n3"} {
		e := slices.Clone(eps)
		slices.Reverse(e[:i+1])
		p, err := Compute(Input{Node: node, Alive: alive, Services: []Service{httpSvc(e...)}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p
			continue
		}
		if diff := cmp.Diff(first.Tables, p.Tables, eq); diff != "" {
			t.Errorf("node %s table differs from n1's (-n1 +%s):\n%s", node, node, diff)
		}
		if diff := cmp.Diff(first.Frontends, p.Frontends, eq); diff != "" {
			t.Errorf("node %s frontends differ:\n%s", node, diff)
		}
	}
}

// IDs carried over from the previous plan stay put when other services come and go, so an
// update touches only the changed service's elements.
func TestComputeIDsAreStable(t *testing.T) {
	alive := map[string]bool{"n1": true}
	svc := func(name string, ip string) Service {
		return Service{Name: types.NamespacedName{Namespace: "ns", Name: name}, LBIPs: []netip.Addr{netip.MustParseAddr(ip)},
			Ports: []Port{{Name: "http", Protocol: TCP, Port: 80}}, Endpoints: []Endpoint{readyEP("198.18.1.2", "n1")}}
	}
	p1, err := Compute(Input{Node: "n1", Alive: alive, Services: []Service{svc("b", "203.0.113.2"), svc("c", "203.0.113.3")}})
	if err != nil {
		t.Fatal(err)
	}
	kb := Key{Service: types.NamespacedName{Namespace: "ns", Name: "b"}, Protocol: TCP, Port: 80}
	kc := Key{Service: types.NamespacedName{Namespace: "ns", Name: "c"}, Protocol: TCP, Port: 80}
	ka := Key{Service: types.NamespacedName{Namespace: "ns", Name: "a"}, Protocol: TCP, Port: 80}
	if diff := cmp.Diff(map[Key]uint32{kb: 1, kc: 2}, p1.IDs, eq); diff != "" {
		t.Fatalf("first IDs:\n%s", diff)
	}
	// "a" sorts first, "b" goes away: "c" keeps 2 and "a" takes the freed 1.
	p2, err := Compute(Input{Node: "n1", Alive: alive, IDs: p1.IDs, Services: []Service{svc("c", "203.0.113.3"), svc("a", "203.0.113.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[Key]uint32{ka: 1, kc: 2}, p2.IDs, eq); diff != "" {
		t.Errorf("second IDs:\n%s", diff)
	}
}

// A node that comes back alive gets its backends back.
func TestComputeNodeComesBack(t *testing.T) {
	s := httpSvc(readyEP("198.18.1.2", "n1"), readyEP("198.18.2.2", "n2"))
	in := Input{Node: "n1", Alive: map[string]bool{"n1": true, "n2": false}, Services: []Service{s}}
	down, _ := Compute(in)
	in.Alive["n2"] = true
	up, _ := Compute(in)
	if got := len(slices.Compact(slices.Sorted(slices.Values(sortable(down.Tables[1]))))); got != 1 {
		t.Errorf("n2 dead: %d distinct backends, want 1", got)
	}
	if got := len(slices.Compact(slices.Sorted(slices.Values(sortable(up.Tables[1]))))); got != 2 {
		t.Errorf("n2 alive again: %d distinct backends, want 2", got)
	}
}

func sortable(t []netip.AddrPort) []string {
	out := make([]string, len(t))
	for i, a := range t {
		out[i] = a.String()
	}
	return out
}
