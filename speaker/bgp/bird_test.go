package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/loadstone-lb/loadstone/internal/testwait"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// birdConf is the router: AS 64500, passive, eBGP over IPv4 and IPv6 and iBGP over IPv4.
const birdConf = `router id 192.0.2.1;
protocol device {}
protocol bgp node4 {
  local 192.0.2.1 as 64500;
  neighbor 192.0.2.10 as 64600;
  passive on;
  hold time 9;
  keepalive time 3;
  ipv4 { import all; export none; };
}
protocol bgp ibgp4 {
  local 192.0.2.2 as 64500;
  neighbor 192.0.2.11 as 64500;
  direct;
  passive on;
  ipv4 { import all; export none; };
}
protocol bgp node6 {
  local 2001:db8:1::1 as 64500;
  neighbor 2001:db8:1::10 as 64600;
  passive on;
  ipv6 { import all; export none; };
}
`

// TestBIRD runs our gobgp against BIRD 2 in a router netns.
func TestBIRD(t *testing.T) {
	l := newRouterLab(t, "bird", "birdc")
	ctl := l.startBIRD(t, birdConf)
	l.runChild(t, "TestBIRDChild", childSpec{BirdCtl: ctl})
}

type bird struct {
	t   *testing.T
	ctl string
}

// route returns the BGP.* attributes BIRD holds for prefix from protocol proto.
func (b bird) route(prefix, proto string) (map[string]string, bool, error) {
	out, err := cmdOut("birdc", "-s", b.ctl, "show", "route", prefix, "protocol", proto, "all")
	if strings.Contains(out, "Network not found") {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	attrs := map[string]string{}
	found := false
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "unicast [") {
			found = true
		}
		l := strings.TrimSpace(line)
		if k, v, ok := strings.Cut(l, ": "); ok && strings.HasPrefix(k, "BGP.") {
			attrs[strings.TrimPrefix(k, "BGP.")] = v
		}
	}
	return attrs, found, nil
}

// expect waits until, for every (prefix, protocol), BIRD has the route with the given
// attributes (nil: no route).
func (b bird) expect(what string, want map[[2]string]map[string]string) {
	b.t.Helper()
	testwait.For(b.t, what, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		var diffs []string
		for k, w := range want {
			attrs, found, err := b.route(k[0], k[1])
			if err != nil {
				return false, err.Error()
			}
			var got map[string]string
			if found {
				got = map[string]string{}
				for a := range w {
					if v, ok := attrs[a]; ok {
						got[a] = v
					}
				}
			}
			if d := cmp.Diff(w, got); d != "" {
				diffs = append(diffs, fmt.Sprintf("%s from %s (-want +got):\n%s", k[0], k[1], d))
			}
		}
		return len(diffs) == 0, strings.Join(diffs, "\n")
	})
}

// TestBIRDChild runs inside the node netns (see TestBIRD).
func TestBIRDChild(t *testing.T) {
	spec := childSpecOrSkip(t)
	b := bird{t: t, ctl: spec.BirdCtl}
	ctx := context.Background()
	srv := New(Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = srv.Close(ctx)
		}
	})
	e4, i4, e6 := ebgp4, ibgp4, ebgp6
	i4.GracefulRestart = false
	plan := routes.Plan{
		RouterID: netip.MustParseAddr("192.0.2.10"),
		Peers:    []routes.Peer{e4, e6, i4},
		Paths: map[string][]routes.Path{
			"ebgp4": {
				{Prefix: pfx("203.0.113.0/28"), Communities: []uint32{comm(65000, 200)}},
				{Prefix: pfx("203.0.113.10/32"), Communities: []uint32{comm(65000, 100), comm(65000, 101)},
					LargeCommunities: [][3]uint32{{64600, 1, 2}}, LinkBandwidth: 1.25e8},
			},
			"ibgp4": {{Prefix: pfx("203.0.113.10/32"), Communities: []uint32{comm(65000, 2)}, LocalPref: 300, HasLocalPref: true}},
			"ebgp6": {{Prefix: pfx("2001:db8:100::10/128"), LargeCommunities: [][3]uint32{{64600, 6, 6}}}},
		},
	}
	if err := srv.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	// BIRD shows the link-bandwidth community as a two-octet-AS one of unknown type
	// 0x40/0x04, AS 64600, value 1290693416 = 0x4cee6b28 = 1.25e8 as an IEEE 754 float32.
	lb := "(unknown 0x4004, 64600, 1290693416)"
	b.expect("the plan at BIRD", map[[2]string]map[string]string{
		{"203.0.113.0/28", "node4"}: {"next_hop": "192.0.2.10", "community": "(65000,200)"},
		{"203.0.113.10/32", "node4"}: {"next_hop": "192.0.2.10", "community": "(65000,100) (65000,101)",
			"large_community": "(64600, 1, 2)", "ext_community": lb},
		{"203.0.113.10/32", "ibgp4"}:      {"next_hop": "192.0.2.11", "community": "(65000,2)", "local_pref": "300"},
		{"203.0.113.0/28", "ibgp4"}:       nil,
		{"2001:db8:100::10/128", "node6"}: {"next_hop": "2001:db8:1::10", "large_community": "(64600, 6, 6)"},
	})

	// The /28 leaves the plan: withdrawn. Communities change: updated.
	plan.Paths["ebgp4"] = []routes.Path{{Prefix: pfx("203.0.113.10/32"), Communities: []uint32{comm(65000, 7)}}}
	if err := srv.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	b.expect("the second plan at BIRD", map[[2]string]map[string]string{
		{"203.0.113.0/28", "node4"}:  nil,
		{"203.0.113.10/32", "node4"}: {"next_hop": "192.0.2.10", "community": "(65000,7)"},
		{"203.0.113.10/32", "ibgp4"}: {"next_hop": "192.0.2.11", "community": "(65000,2)", "local_pref": "300"},
	})

	// Close without graceful restart: everything withdrawn.
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closed = true
	b.expect("withdrawn after Close", map[[2]string]map[string]string{
		{"203.0.113.10/32", "node4"}:      nil,
		{"203.0.113.10/32", "ibgp4"}:      nil,
		{"2001:db8:100::10/128", "node6"}: nil,
	})
}
