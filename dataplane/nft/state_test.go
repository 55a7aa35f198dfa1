package nft

import (
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"

	"github.com/loadstone-lb/loadstone/dataplane/plan"
)

func TestEncodingRoundTrips(t *testing.T) {
	for _, f := range []plan.Frontend{
		{Addr: netip.MustParseAddr("203.0.113.10"), Protocol: plan.TCP, Port: 80},
		{Addr: netip.MustParseAddr("2001:db8:100::10"), Protocol: plan.SCTP, Port: 65535},
	} {
		got, err := decodeFrontend(encodeFrontend(f))
		if err != nil || got != f {
			t.Errorf("frontend %v → %v, %v", f, got, err)
		}
	}
	for _, b := range []netip.AddrPort{netip.MustParseAddrPort("198.18.1.2:8080"), netip.MustParseAddrPort("[2001:db8:18::2]:1")} {
		got, err := decodeBackend(encodeBackend(b))
		if err != nil || got != b {
			t.Errorf("backend %v → %v, %v", b, got, err)
		}
	}
	for _, s := range []string{"198.51.100.0/24", "0.0.0.0/0", "192.0.2.7/32", "2001:db8::/32", "2001:db8::1/128", "::/0"} {
		p := netip.MustParsePrefix(s)
		got, err := rangePrefix(p.Addr().AsSlice(), lastAddr(p).AsSlice())
		if err != nil || got != p {
			t.Errorf("prefix %v → %v, %v", p, got, err)
		}
	}
	if _, err := rangePrefix(netip.MustParseAddr("192.0.2.1").AsSlice(), netip.MustParseAddr("192.0.2.5").AsSlice()); err == nil {
		t.Error("192.0.2.1-192.0.2.5 decoded as a prefix")
	}
	for _, c := range []chainSpec{{Size: 251}, {V6: true, Size: 65521, Affinity: true}} {
		got, ok := parseChain(c.name())
		if !ok || got != c {
			t.Errorf("chain %v → %q → %v, %v", c, c.name(), got, ok)
		}
	}
	for _, bad := range []string{"services", "maglev4-", "maglev4-x", "firewall"} {
		if _, ok := parseChain(bad); ok {
			t.Errorf("parseChain(%q) accepted", bad)
		}
	}
}

// recordConn records element operations per batch, for the batching tests.
type recordConn struct {
	Conn
	pending []op
	batches [][]op
}

type op struct {
	set string
	del bool
	key string
}

func (r *recordConn) SetAddElements(s *nftables.Set, els []nftables.SetElement) error {
	for _, e := range els {
		r.pending = append(r.pending, op{set: s.Name, key: string(e.Key)})
	}
	return nil
}

func (r *recordConn) SetDeleteElements(s *nftables.Set, els []nftables.SetElement) error {
	for _, e := range els {
		r.pending = append(r.pending, op{set: s.Name, del: true, key: string(e.Key)})
	}
	return nil
}

func (r *recordConn) Flush() error {
	r.batches = append(r.batches, r.pending)
	r.pending = nil
	return nil
}

func twoPlans(t *testing.T) (plan.Plan, plan.Plan) {
	t.Helper()
	var eps []plan.Endpoint
	for i := range 6 {
		eps = append(eps, plan.Endpoint{Addr: netip.AddrFrom4([4]byte{198, 18, 1, byte(2 + i)}), Node: "n1", Ports: map[string]uint16{"": 80}, Ready: true})
	}
	in := plan.Input{Node: "n1", Services: []plan.Service{
		{Name: svcName("a"), LBIPs: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, Ports: []plan.Port{{Protocol: plan.TCP, Port: 80}}, Endpoints: eps},
		{Name: svcName("b"), LBIPs: []netip.Addr{netip.MustParseAddr("203.0.113.2")}, Ports: []plan.Port{{Protocol: plan.TCP, Port: 80}}},
	}}
	before, err := plan.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	// a loses a backend; b gets endpoints (reject → services), a new service c.
	in.IDs = before.IDs
	in.Services[0].Endpoints = eps[1:]
	in.Services[1].Endpoints = eps[:1]
	in.Services = append(in.Services, plan.Service{Name: svcName("c"), LBIPs: []netip.Addr{netip.MustParseAddr("203.0.113.3")},
		Ports: []plan.Port{{Protocol: plan.TCP, Port: 80}}, Endpoints: eps[:2]})
	after, err := plan.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	return before, after
}

// Changes go out in phases (targets, then switches, then removals), in batches of at
// most BatchSize elements, with each replaced element's delete and add in one batch.
func TestDiffPhasesAndBatches(t *testing.T) {
	before, after := twoPlans(t)
	items := diff(desired(before), desired(after))
	phase := func(it item) int {
		switch {
		case it.kind == opDelete:
			return 3
		case it.set == setServices+"4" || it.set == setReject+"4" || it.set == setRanged+"4":
			return 2
		}
		return 1
	}
	last, replaced, total := 0, 0, 0
	for _, it := range items {
		if p := phase(it); p < last {
			t.Fatalf("item %+v of phase %d after phase %d", it, p, last)
		} else {
			last = p
		}
		if it.kind == opReplace {
			replaced++
		}
		total += it.cost()
	}
	if replaced == 0 || last != 3 {
		t.Fatalf("the change has %d replacements and ends in phase %d; want both kinds of work", replaced, last)
	}
	rc := &recordConn{}
	a := &Applier{conn: rc, cfg: Config{BatchSize: 7}}
	if err := a.send(items); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for i, b := range rc.batches {
		if len(b) > 7 {
			t.Errorf("batch %d has %d elements", i, len(b))
		}
		sent += len(b)
		dels := map[op]bool{}
		for _, o := range b {
			if o.del {
				dels[op{set: o.set, key: o.key}] = true
			}
		}
		for _, o := range b {
			if o.del || o.set != setBackends+"4" {
				continue
			}
			// An added backend entry whose key existed before must have its delete here.
			f, err := decodeFrontend([]byte(o.key[:len(o.key)-4]))
			if err != nil {
				t.Fatal(err)
			}
			idx := int(binaryutil.NativeEndian.Uint32([]byte(o.key[len(o.key)-4:])))
			if existed := idx < len(desired(before).tables[f]); existed && !dels[op{set: o.set, key: o.key}] {
				t.Errorf("batch %d re-adds %x without deleting it", i, o.key)
			}
		}
	}
	if sent != total {
		t.Errorf("sent %d element operations, want %d", sent, total)
	}
}

// split keeps every element list under the 16-bit attribute length, whatever the count.
func TestSplitBoundsListBytes(t *testing.T) {
	var els []nftables.SetElement
	for range 1000 {
		els = append(els, nftables.SetElement{Key: make([]byte, 28), Val: make([]byte, 20)})
	}
	parts := split(els)
	if len(parts) < 2 {
		t.Fatalf("1000 IPv6 backend entries in %d message(s)", len(parts))
	}
	n := 0
	for _, p := range parts {
		size := 0
		for _, e := range p {
			size += 64 + len(e.Key) + len(e.Val)
		}
		if size > maxListBytes {
			t.Errorf("part of %d elements is ~%d bytes", len(p), size)
		}
		n += len(p)
	}
	if n != len(els) {
		t.Errorf("parts hold %d elements, want %d", n, len(els))
	}
}
