package nft

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/dataplane/plan"
	"github.com/loadstone-lb/loadstone/internal/nsthread"
	"github.com/loadstone-lb/loadstone/internal/testwait"
)

var eq = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})

var (
	lbWeb4    = netip.MustParseAddr("203.0.113.10")
	lbWeb6    = netip.MustParseAddr("2001:db8:100::10")
	lbEmpty4  = netip.MustParseAddr("203.0.113.20")
	lbEmpty6  = netip.MustParseAddr("2001:db8:100::20")
	lbRanged4 = netip.MustParseAddr("203.0.113.30")
	lbSticky4 = netip.MustParseAddr("203.0.113.40")
)

func svcName(n string) types.NamespacedName { return types.NamespacedName{Namespace: "test", Name: n} }

// endpoints: backend i (1-based) is on node "n1" (this node) unless listed in remote.
func endpoints(n int, remote ...int) []plan.Endpoint {
	var out []plan.Endpoint
	for i := 1; i <= n; i++ {
		node := "n1"
		if slices.Contains(remote, i) {
			node = "n2"
		}
		for _, a := range []netip.Addr{backendV4(i), backendV6(i)} {
			out = append(out, plan.Endpoint{Addr: a, Node: node, Ports: map[string]uint16{"": 8080}, Ready: true, Serving: true})
		}
	}
	return out
}

func port(p plan.Protocol, n uint16) plan.Port { return plan.Port{Protocol: p, Port: n} }

// scenario: web (dual stack, TCP+UDP 80, 3 backends, backend 3 on another node), empty
// (no endpoints), ranged (source range that excludes the client), sticky (ClientIP).
func scenario(eps []plan.Endpoint) plan.Input {
	return plan.Input{
		Node:  "n1",
		Alive: map[string]bool{"n1": true, "n2": true},
		Services: []plan.Service{
			{Name: svcName("web"), LBIPs: []netip.Addr{lbWeb4, lbWeb6}, Ports: []plan.Port{port(plan.TCP, 80), port(plan.UDP, 80)}, Endpoints: eps},
			{Name: svcName("empty"), LBIPs: []netip.Addr{lbEmpty4, lbEmpty6}, Ports: []plan.Port{port(plan.TCP, 80), port(plan.UDP, 53)}},
			{Name: svcName("ranged"), LBIPs: []netip.Addr{lbRanged4}, Ports: []plan.Port{port(plan.TCP, 80)}, Endpoints: eps,
				SourceRanges: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:5::/48")}},
			{Name: svcName("sticky"), LBIPs: []netip.Addr{lbSticky4}, Ports: []plan.Port{port(plan.TCP, 80)}, Endpoints: eps,
				ClientIPAffinity: true, TrafficPolicy: plan.PolicyLocal},
		},
	}
}

func compute(t *testing.T, in plan.Input) plan.Plan {
	t.Helper()
	p, err := plan.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newApplier(t *testing.T, l *lab, reg prometheus.Registerer) *Applier {
	t.Helper()
	a, err := New(Config{NetNS: int(l.nodeNS), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkInstalled reads the table back and compares it with the plan.
//
// A dump of a large hash set that races the kernel's deferred rehash, just after many
// inserts, can miss or repeat elements (see Read): a difference is read again, for up to
// 5 s, before it counts. Seen under CI load after a rebuild of 251-entry tables.
func checkInstalled(t *testing.T, l *lab, p plan.Plan) {
	t.Helper()
	var diff string
	for deadline := time.Now().Add(5 * time.Second); ; {
		got, err := Read(int(l.nodeNS))
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if diff = cmp.Diff(Expected(p), got, eq); diff == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if diff != "" {
		t.Errorf("installed table differs from the plan (-plan +kernel):\n%s", diff)
	}
}

// nftLists checks that the nft CLI can print our table (it aborts on expressions it
// cannot represent, which would break `nft list ruleset` for everyone on the node).
func nftLists(t *testing.T, l *lab) string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Log("nft CLI not installed: listing not checked")
		return ""
	}
	out, err := exec.Command("ip", "netns", "exec", l.node, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v\n%s", err, out)
	}
	return string(out)
}

// The table holds what the plan says, with the documented chains, hooks and priorities.
func TestApplyListsBack(t *testing.T) {
	l := newLab(t, 3)
	a := newApplier(t, l, nil)
	p := compute(t, scenario(endpoints(3, 3)))
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
	if out := nftLists(t, l); out != "" {
		for _, want := range []string{"table inet loadstone", "jhash ip saddr . th sport mod 509 seed 0x4c530001", "meta mark set meta mark | 0x00200000"} {
			if !strings.Contains(out, want) {
				t.Errorf("nft list ruleset lacks %q:\n%s", want, out)
			}
		}
	}

	chains, err := l.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	type hooked struct {
		Hook *nftables.ChainHook
		Prio int32
		Type nftables.ChainType
	}
	got := map[string]hooked{}
	for _, c := range chains {
		if c.Table.Name != TableName {
			continue
		}
		h := hooked{Hook: c.Hooknum, Type: c.Type}
		if c.Priority != nil {
			h.Prio = int32(*c.Priority)
		}
		got[c.Name] = h
	}
	want := map[string]hooked{
		"filter-prerouting": {nftables.ChainHookPrerouting, PriorityFilter, nftables.ChainTypeFilter},
		"filter-output":     {nftables.ChainHookOutput, PriorityFilter, nftables.ChainTypeFilter},
		"nat-prerouting":    {nftables.ChainHookPrerouting, PriorityDNAT, nftables.ChainTypeNAT},
		"nat-output":        {nftables.ChainHookOutput, PriorityDNAT, nftables.ChainTypeNAT},
		"nat-postrouting":   {nftables.ChainHookPostrouting, PrioritySNAT, nftables.ChainTypeNAT},
		"firewall":          {},
		"services":          {},
		// Table sizes: web has 3 backends → 509; sticky (Local) its 2 local ones → 251.
		"maglev4-509":          {},
		"maglev6-509":          {},
		"maglev4-251-clientip": {},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chains (-want +got):\n%s", diff)
	}
	// A second Apply of the same plan is a partial sync with nothing to send.
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
}

// Real connections land on the backend the Maglev table holds for their flow hash,
// which the test predicts with its own jhash; all backends are used; a remote backend
// sees the node's address (masquerade), a local one the client's.
func TestTrafficFollowsMaglev(t *testing.T) {
	l := newLab(t, 3)
	a := newApplier(t, l, nil)
	p := compute(t, scenario(endpoints(3, 3)))
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	names := map[netip.Addr]string{}
	for i := 1; i <= 3; i++ {
		names[backendV4(i)] = fmt.Sprintf("b%d", i)
		names[backendV6(i)] = fmt.Sprintf("b%d", i)
	}
	for k, tc := range []struct {
		network string
		lb      netip.Addr
		client  netip.Addr
	}{
		{"tcp", lbWeb4, clientV4},
		{"tcp", lbWeb6, clientV6},
		{"udp", lbWeb4, clientV4},
		{"udp", lbWeb6, clientV6},
	} {
		// Source ports distinct per case: a port just used may still be bound.
		base := uint16(41000 + 1000*k)
		t.Run(tc.network+map[bool]string{false: "4", true: "6"}[tc.lb.Is6()], func(t *testing.T) {
			proto := plan.TCP
			if tc.network == "udp" {
				proto = plan.UDP
			}
			d := p.Frontends[plan.Frontend{Addr: tc.lb, Protocol: proto, Port: 80}]
			used := map[string]int{}
			for i := range 24 {
				sport := base + uint16(37*i)
				want := p.Tables[d.ID][slot(tc.client, sport, false, d.Size, DefaultSeed)]
				got, err := l.dial(tc.network, netip.AddrPortFrom(tc.lb, 80), sport)
				if err != nil {
					t.Fatalf("flow from port %d: %v", sport, err)
				}
				if got.backend != names[want.Addr()] {
					t.Errorf("flow from port %d reached %s, the table says %s (%s)", sport, got.backend, names[want.Addr()], want)
				}
				wantClient := tc.client
				if want.Addr() == backendV4(3) || want.Addr() == backendV6(3) {
					wantClient = nodeAddrFor(want.Addr())
				}
				if got.client != wantClient {
					t.Errorf("flow from port %d: %s saw client %s, want %s", sport, got.backend, got.client, wantClient)
				}
				used[got.backend]++
			}
			if len(used) != 3 {
				t.Errorf("backends used: %v, want all 3", used)
			}
		})
	}
	// ClientIP affinity: whatever the source port, one backend, the one the table holds
	// for the hash of the source address; only the local backends (Local policy).
	d := p.Frontends[plan.Frontend{Addr: lbSticky4, Protocol: plan.TCP, Port: 80}]
	want := names[p.Tables[d.ID][slot(clientV4, 0, true, d.Size, DefaultSeed)].Addr()]
	for i := range 8 {
		got, err := l.dial("tcp", netip.AddrPortFrom(lbSticky4, 80), 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.backend != want || got.client != clientV4 {
			t.Errorf("sticky connection %d: %+v, want %s seeing %s", i, got, want, clientV4)
		}
	}
}

// nodeAddrFor is the node's address on a backend's link (what masquerade uses).
func nodeAddrFor(b netip.Addr) netip.Addr {
	s := b.AsSlice()
	s[len(s)-1] = 1
	a, _ := netip.AddrFromSlice(s)
	return a
}

// A service without endpoints refuses at once (TCP RST → ECONNREFUSED), and the rejects
// are counted.
func TestNoEndpointsRejects(t *testing.T) {
	l := newLab(t, 1)
	reg := prometheus.NewRegistry()
	a := newApplier(t, l, reg)
	p := compute(t, scenario(endpoints(1)))
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	for _, lb := range []netip.Addr{lbEmpty4, lbEmpty6} {
		_, err := l.dial("tcp", netip.AddrPortFrom(lb, 80), 0)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %s: %v, want connection refused", lb, err)
		}
	}
	// UDP: the ICMP port unreachable surfaces as ECONNREFUSED on the connected socket.
	_, err := l.dial("udp", netip.AddrPortFrom(lbEmpty4, 53), 0)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("udp to %s: %v, want connection refused", lbEmpty4, err)
	}
	if err := a.Apply(p); err != nil { // reads the counters
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(a.metrics.rejected); got < 3 {
		t.Errorf("rejected packets counted: %v, want ≥ 3", got)
	}
}

// Sources outside loadBalancerSourceRanges are dropped (a dial times out rather than
// being refused) and counted; allowing the client's range lets it through.
func TestSourceRanges(t *testing.T) {
	l := newLab(t, 1)
	a := newApplier(t, l, prometheus.NewRegistry())
	in := scenario(endpoints(1))
	p := compute(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	_, err := l.dial("tcp", netip.AddrPortFrom(lbRanged4, 80), 0)
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial from outside the ranges: %v, want a timeout (dropped)", err)
	}
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(a.metrics.droppedSourceRange); got < 1 {
		t.Errorf("source-range drops counted: %v, want ≥ 1", got)
	}
	// The unrestricted service on the same node still answers.
	if _, err := l.dial("tcp", netip.AddrPortFrom(lbWeb4, 80), 0); err != nil {
		t.Errorf("unrestricted service: %v", err)
	}
	in.Services[2].SourceRanges = append(in.Services[2].SourceRanges, netip.MustParsePrefix("198.51.100.0/28"))
	p = compute(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
	if got, err := l.dial("tcp", netip.AddrPortFrom(lbRanged4, 80), 0); err != nil || got.backend != "b1" {
		t.Errorf("dial from an allowed range: %+v, %v", got, err)
	}
	// Dropping the restriction altogether removes the interval elements too.
	in.IDs = p.IDs
	in.Services[2].SourceRanges = nil
	p = compute(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
	if got, err := l.dial("tcp", netip.AddrPortFrom(lbRanged4, 80), 0); err != nil || got.backend != "b1" {
		t.Errorf("dial without ranges: %+v, %v", got, err)
	}
}

// countingConn counts the elements sent, and can fail a chosen Flush.
type countingConn struct {
	*nftables.Conn
	added, deleted int
	flushes        int
	failFlush      int // fail the flush with this 1-based number; 0: never
}

func (c *countingConn) SetAddElements(s *nftables.Set, els []nftables.SetElement) error {
	c.added += len(els)
	return c.Conn.SetAddElements(s, els)
}

func (c *countingConn) SetDeleteElements(s *nftables.Set, els []nftables.SetElement) error {
	c.deleted += len(els)
	return c.Conn.SetDeleteElements(s, els)
}

var errInjected = errors.New("injected flush failure")

func (c *countingConn) Flush() error {
	c.flushes++
	if c.flushes == c.failFlush {
		// Drop the queued messages, as a failed batch would be rolled back.
		c.Conn = mustDial(c.Conn)
		return errInjected
	}
	return c.Conn.Flush()
}

var dialNS = map[*nftables.Conn]int{}

func mustDial(old *nftables.Conn) *nftables.Conn {
	c, err := Dial(dialNS[old])
	if err != nil {
		panic(err)
	}
	dialNS[c] = dialNS[old]
	return c
}

// Removing a backend sends only the table entries that change (its share, and the few
// survivors' entries Maglev moves), and connections follow the new table.
func TestRemoveBackendChangesOnlyItsShare(t *testing.T) {
	// Four backends to three keeps the table size (509 on maglev.Size's ladder); three
	// to two would change it and reshuffle every entry.
	l := newLab(t, 4)
	cc := &countingConn{Conn: l.conn}
	a, err := New(Config{Conn: cc, NetNS: int(l.nodeNS)})
	if err != nil {
		t.Fatal(err)
	}
	in := scenario(endpoints(4))
	in.Services = in.Services[:1]
	before := compute(t, in)
	if err := a.Apply(before); err != nil {
		t.Fatal(err)
	}
	// Backend 3 becomes unready (a dead node would do the same).
	in.IDs = before.IDs
	for i := range in.Services[0].Endpoints {
		if e := &in.Services[0].Endpoints[i]; e.Addr == backendV4(3) || e.Addr == backendV6(3) {
			e.Ready = false
		}
	}
	after := compute(t, in)
	for id, tab := range before.Tables {
		if len(after.Tables[id]) != len(tab) {
			t.Fatalf("table %d size %d → %d: the test needs an unchanged size", id, len(tab), len(after.Tables[id]))
		}
	}
	cc.added, cc.deleted = 0, 0
	if err := a.Apply(after); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, after)
	changed, share := 0, 0
	for id, tab := range before.Tables {
		for i, b := range tab {
			if after.Tables[id][i] != b {
				changed++
			}
			if b.Addr() == backendV4(3) || b.Addr() == backendV6(3) {
				share++
			}
		}
	}
	if cc.added != changed || cc.deleted != changed {
		t.Errorf("sent %d adds and %d deletes, want %d of each (the changed entries)", cc.added, cc.deleted, changed)
	}
	if changed < share || changed > share+share/5 {
		t.Errorf("%d entries changed for a share of %d", changed, share)
	}
	for i := range 12 {
		got, err := l.dial("tcp", netip.AddrPortFrom(lbWeb4, 80), uint16(42000+i))
		if err != nil {
			t.Fatal(err)
		}
		if got.backend == "b3" {
			t.Errorf("flow %d still reaches the removed backend", i)
		}
	}
}

// A failure part-way through a full sync leaves a partial table; the next Apply is a
// full sync that repairs it. Deleting the table behind the applier's back makes the
// next partial sync fail, and the one after repairs it.
func TestFailureRecoveredByFullSync(t *testing.T) {
	l := newLab(t, 2)
	dialNS[l.conn] = int(l.nodeNS)
	cc := &countingConn{Conn: l.conn, failFlush: 3}
	reg := prometheus.NewRegistry()
	a, err := New(Config{Conn: cc, NetNS: int(l.nodeNS), BatchSize: 100, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	p := compute(t, scenario(endpoints(2, 2)))
	if err := a.Apply(p); !errors.Is(err, errInjected) {
		t.Fatalf("first apply: %v, want the injected failure", err)
	}
	if got, err := Read(int(l.nodeNS)); err == nil && cmp.Equal(got, Expected(p), eq) {
		t.Fatal("the interrupted sync installed everything; the test injects nothing")
	}
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
	if got := testutil.ToFloat64(a.metrics.failures); got != 1 {
		t.Errorf("sync failures = %v, want 1", got)
	}
	if _, err := l.dial("tcp", netip.AddrPortFrom(lbWeb4, 80), 0); err != nil {
		t.Errorf("after recovery: %v", err)
	}

	// Someone deletes our table.
	c2 := mustDial(l.conn)
	c2.DelTable(table)
	if err := c2.Flush(); err != nil {
		t.Fatal(err)
	}
	in := scenario(endpoints(1))
	in.IDs = p.IDs
	p2 := compute(t, in)
	if err := a.Apply(p2); err == nil {
		t.Fatal("partial sync onto a deleted table succeeded")
	}
	if err := a.Apply(p2); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p2)
	testwait.For(t, "traffic through the rebuilt table", 10*time.Second, 200*time.Millisecond, func() (bool, string) {
		got, err := l.dial("tcp", netip.AddrPortFrom(lbWeb4, 80), 0)
		return err == nil && got.backend == "b1", fmt.Sprintf("%+v %v", got, err)
	})
}

// Remove deletes the whole table, and succeeds again when there is none.
func TestRemove(t *testing.T) {
	l := newLab(t, 1)
	a := newApplier(t, l, nil)
	if err := a.Apply(compute(t, scenario(endpoints(1)))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := a.Remove(); err != nil {
			t.Fatal(err)
		}
		if _, err := l.conn.ListTableOfFamily(TableName, nftables.TableFamilyINet); err == nil {
			t.Fatal("table still there after Remove")
		}
	}
	// Apply after Remove rebuilds.
	p := compute(t, scenario(endpoints(1)))
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
}

// Large plans go out in batches (default size) through the enlarged buffers; IPv6
// entries are big enough that one message of 1000 would overflow the element list's
// 16-bit attribute length.
func TestLargePlan(t *testing.T) {
	l := newLab(t, 1)
	a := newApplier(t, l, nil)
	in := plan.Input{Node: "n1", Alive: map[string]bool{"n1": true}}
	for s := range 20 {
		var eps []plan.Endpoint
		for b := range 10 {
			eps = append(eps,
				plan.Endpoint{Addr: netip.AddrFrom4([4]byte{198, 18, byte(100 + s), byte(b + 2)}), Node: "n1", Ports: map[string]uint16{"": 8080}, Ready: true},
				plan.Endpoint{Addr: netip.MustParseAddr(fmt.Sprintf("2001:db8:18:%x::%x", 100+s, b+2)), Node: "n1", Ports: map[string]uint16{"": 8080}, Ready: true})
		}
		in.Services = append(in.Services, plan.Service{Name: svcName(fmt.Sprintf("s%d", s)),
			LBIPs: []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + s)}), netip.MustParseAddr(fmt.Sprintf("2001:db8:100::%x", 100+s))},
			Ports: []plan.Port{port(plan.TCP, 80)}, Endpoints: eps})
	}
	p := compute(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
	a.Resync()
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
}

// A periodic full resync of a healthy table lists it back and sends only what differs:
// an element deleted behind our back comes back, a foreign one goes, and the table is
// not rebuilt (its counters keep their values). A foreign rule in our chains makes it
// rebuild.
func TestFullResyncRepairsInPlace(t *testing.T) {
	l := newLab(t, 2)
	cc := &countingConn{Conn: l.conn}
	a, err := New(Config{Conn: cc, NetNS: int(l.nodeNS)})
	if err != nil {
		t.Fatal(err)
	}
	p := compute(t, scenario(endpoints(2)))
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	if _, err := l.dial("tcp", netip.AddrPortFrom(lbEmpty4, 80), 0); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("reject: %v", err)
	}
	rejected := func() uint64 {
		objs, err := l.conn.GetObjects(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if name, n, ok := counterOf(o); ok && name == counterRejected {
				return n
			}
		}
		t.Fatal("no rejected counter")
		return 0
	}
	if rejected() == 0 {
		t.Fatal("reject not counted")
	}
	// Tamper: drop one backend entry, add a foreign remote address.
	ss := sets()
	if err := l.conn.SetDeleteElements(ss[famName(setBackends, false)], []nftables.SetElement{{Key: encodeSlot(plan.Frontend{Addr: lbWeb4, Protocol: plan.TCP, Port: 80}, 7)}}); err != nil {
		t.Fatal(err)
	}
	if err := l.conn.SetAddElements(ss[famName(setRemote, false)], []nftables.SetElement{{Key: netip.MustParseAddr("192.0.2.99").AsSlice()}}); err != nil {
		t.Fatal(err)
	}
	if err := l.conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _ := Read(int(l.nodeNS)); cmp.Equal(got.Tables, Expected(p).Tables, eq) {
		t.Fatal("tampering had no effect")
	}
	a.Resync()
	cc.added, cc.deleted = 0, 0
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
	if cc.added != 1 || cc.deleted != 1 {
		t.Errorf("in-place resync sent %d adds and %d deletes, want 1 and 1", cc.added, cc.deleted)
	}
	if rejected() == 0 {
		t.Error("the counters restarted: the table was rebuilt")
	}

	// A foreign rule in our services chain: the resync rebuilds.
	l.conn.AddRule(&nftables.Rule{Table: table, Chain: &nftables.Chain{Name: chainServices, Table: table},
		Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, Flags: 0})
	if err := l.conn.Flush(); err != nil {
		t.Fatal(err)
	}
	a.Resync()
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
	rules, err := ruleComments(int(l.nodeNS), chainServices)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 {
		t.Errorf("services chain has %d rules after the rebuild, want 2", len(rules))
	}
	if rejected() != 0 {
		t.Error("the counters survived: the table was not rebuilt")
	}
	if got, err := l.dial("tcp", netip.AddrPortFrom(lbWeb4, 80), 0); err != nil || got.backend == "" {
		t.Errorf("traffic after the rebuild: %+v, %v", got, err)
	}
}

// Maglev chains nothing points at are deleted by the sync that stops using them.
func TestUnusedChainsDeleted(t *testing.T) {
	l := newLab(t, 1)
	a := newApplier(t, l, nil)
	in := scenario(endpoints(1))
	p := compute(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	in.Services = in.Services[:3] // drop sticky: its clientip chain goes
	in.IDs = p.IDs
	p = compute(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
	chains, err := l.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		if c.Table.Name == TableName && strings.HasSuffix(c.Name, "-clientip") {
			t.Errorf("chain %s still there", c.Name)
		}
	}
}

// Clients on the node itself go through nat-output; mode nodeport forwards to the
// NodePort of the nodes that have endpoints (here the backend netns play the nodes, with
// the servers' port as NodePort) and masquerades.
func TestNodeLocalClientAndNodePortMode(t *testing.T) {
	l := newLab(t, 2)
	a := newApplier(t, l, nil)
	lbNP := netip.MustParseAddr("203.0.113.50")
	in := scenario(endpoints(2))
	in.Services = append(in.Services[:1], plan.Service{
		Name: svcName("np"), Mode: plan.ModeNodePort, LBIPs: []netip.Addr{lbNP},
		Ports: []plan.Port{{Protocol: plan.TCP, Port: 80, NodePort: 8080}},
		// Only "n2" has a ready endpoint: only its NodePort is used.
		Endpoints: []plan.Endpoint{
			{Addr: netip.MustParseAddr("198.18.200.2"), Node: "n2", Ready: true},
			{Addr: netip.MustParseAddr("198.18.200.3"), Node: "n3", Ready: false},
		},
	})
	in.Alive["n3"] = true
	in.NodeAddrs = map[string][]netip.Addr{"n2": {backendV4(2)}, "n3": {backendV4(1)}}
	p := compute(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, l, p)
	for i := range 6 {
		got, err := l.dial("tcp", netip.AddrPortFrom(lbNP, 80), uint16(43000+i))
		if err != nil {
			t.Fatal(err)
		}
		if got.backend != "b2" || got.client != nodeAddrFor(backendV4(2)) {
			t.Errorf("nodeport flow %d: %+v, want b2 seeing the node's address", i, got)
		}
	}
	// From the node itself. A real node has a default route; the connect needs one
	// before the output hook DNATs (and reroutes) the packet.
	run(t, "ip", "-n", l.node, "route", "add", "default", "via", clientV4.String())
	var seen []string
	for range 4 {
		var got answer
		err := nsthread.DoNamed(l.node, func() error {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(lbWeb4, 80).String(), 3*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return err
			}
			got.backend = strings.Fields(line)[0]
			return nil
		})
		if err != nil {
			t.Fatalf("node-local client: %v", err)
		}
		seen = append(seen, got.backend)
	}
	for _, b := range seen {
		if b != "b1" && b != "b2" {
			t.Errorf("node-local client reached %q", b)
		}
	}
}
