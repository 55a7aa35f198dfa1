package agent

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/bgp"
	"github.com/loadstone-lb/loadstone/speaker/members"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// announcedOf lists a's loadstone_speaker_announced series as "ip service protocol=value".
func announcedOf(t *testing.T, a *Agent) []string {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	go func() {
		a.m.announced.Collect(ch)
		close(ch)
	}()
	var out []string
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		l := map[string]string{}
		for _, lp := range d.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		out = append(out, fmt.Sprintf("%s %s %s=%v", l["ip"], l["service"], l["protocol"], d.GetGauge().GetValue()))
	}
	slices.Sort(out)
	return out
}

func takeovers(a *Agent) string {
	return fmt.Sprintf("failovers %v, handovers %v", testutil.ToFloat64(a.m.failovers), testutil.ToFloat64(a.m.handovers))
}

// TestAnnouncedAndTakeovers: the announced gauge follows what each node's layer 2
// answers for (the series goes with the IP); the node that takes an IP over from a node
// cut off counts a failover, from a node that left gracefully a handover; the node that
// gets its IP back after a partition (it never stopped announcing) counts neither.
// For 203.0.113.10 the election order of n1..n4 is n4 n3 n1 n2.
func TestAnnouncedAndTakeovers(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, a4 := f.startAgentWith(t, ctx, "n4", nil, nil)
	ann3, _, a3 := f.startAgentWith(t, ctx, "n3", nil, nil)
	f.service(t, "web", "203.0.113.10")
	on := []string{"203.0.113.10 default/web layer2=1"}

	waitFor(t, "n4's announced series", func() (bool, string) {
		return slices.Equal(announcedOf(t, a4), on), fmt.Sprint(announcedOf(t, a4))
	})
	if got := announcedOf(t, a3); len(got) != 0 {
		t.Errorf("n3 exports %v while n4 announces", got)
	}
	// n3 knows n4 as the owner only from an election it ran with the IP: wait until its
	// cache has the Service's IP and endpoints, then for a sync after that.
	waitFor(t, "the Service's IP and endpoints in n3's cache", func() (bool, string) {
		var svcs corev1.ServiceList
		var eps discoveryv1.EndpointSliceList
		if err := a3.cfg.Cache.List(ctx, &svcs); err != nil {
			return false, err.Error()
		}
		if err := a3.cfg.Cache.List(ctx, &eps); err != nil {
			return false, err.Error()
		}
		ip := false
		for _, s := range svcs.Items {
			for _, in := range s.Status.LoadBalancer.Ingress {
				ip = ip || in.IP == "203.0.113.10"
			}
		}
		return ip && len(eps.Items) > 0, fmt.Sprintf("ip %v, %d slices", ip, len(eps.Items))
	})
	settle(t, a3)

	// n4 is cut off: n3 takes over from a dead node.
	f.v.set([]string{"n4"})
	f.v.set([]string{"n1", "n2", "n3"}, "n1", "n2", "n3")
	waitFor(t, "n3 announces after a failover", func() (bool, string) {
		return slices.Equal(announcedOf(t, a3), on) && testutil.ToFloat64(a3.m.failovers) == 1,
			fmt.Sprintf("%v, %s", announcedOf(t, a3), takeovers(a3))
	})
	if n := testutil.ToFloat64(a3.m.handovers); n != 0 {
		t.Errorf("n3 counted %v handovers for a failover", n)
	}

	// The partition heals: n3 withdraws and its series goes; n4 never stopped.
	f.v.set(everyone, everyone...)
	waitFor(t, "n3's series removed", func() (bool, string) {
		return len(ann3.ips()) == 0 && len(announcedOf(t, a3)) == 0, fmt.Sprint(announcedOf(t, a3))
	})
	if got := takeovers(a4); got != "failovers 0, handovers 0" {
		t.Errorf("n4, which kept the IP: %s", got)
	}

	// n4 leaves gracefully: n3 takes over in a planned move.
	f.v.n4MAC(members.StateLeft)
	f.v.set([]string{"n1", "n2", "n3"}, "n1", "n2", "n3")
	waitFor(t, "n3 announces after a handover", func() (bool, string) {
		return slices.Equal(announcedOf(t, a3), on) && testutil.ToFloat64(a3.m.handovers) == 1,
			fmt.Sprintf("%v, %s", announcedOf(t, a3), takeovers(a3))
	})
	if n := testutil.ToFloat64(a3.m.failovers); n != 1 {
		t.Errorf("n3's failovers went from 1 to %v on a handover", n)
	}
}

func TestClassifyTakeover(t *testing.T) {
	alive := func(n string) bool { return n == "up" }
	mems := map[string]members.Member{"gone": {Name: "gone", State: members.StateLeft}, "dead": {Name: "dead", State: members.StateDead}}
	for _, tc := range []struct {
		prev string
		want takeover
	}{
		{"", notTakenOver},     // no previous owner known
		{"self", notTakenOver}, // ours before (withheld, held down)
		{"up", handover},       // alive: the election moved it
		{"gone", handover},     // left gracefully
		{"dead", failover},     // failed
		{"unknown", failover},  // not alive and never seen leaving
	} {
		if got := classifyTakeover("self", tc.prev, alive, mems); got != tc.want {
			t.Errorf("previous owner %q: %v, want %v", tc.prev, got, tc.want)
		}
	}
}

// TestBGPAnnounced: an IP counts as announced in BGP when a prefix holding it goes to an
// Established peer, once per Service, aggregates included; not when the only peer taking
// it is down, nor when it is gated and the dataplane does not carry it.
func TestBGPAnnounced(t *testing.T) {
	web := types.NamespacedName{Namespace: "default", Name: "web"}
	api := types.NamespacedName{Namespace: "default", Name: "api"}
	dp := types.NamespacedName{Namespace: "default", Name: "dp"}
	ip := netip.MustParseAddr
	in := routes.Input{
		Services: []routes.Service{
			{Key: web, IPs: []netip.Addr{ip("203.0.113.10"), ip("2001:db8::10")}},
			{Key: api, IPs: []netip.Addr{ip("203.0.113.20")}},
			{Key: dp, IPs: []netip.Addr{ip("203.0.113.30")}},
		},
		Gated:   map[netip.Addr]bool{ip("203.0.113.30"): true},
		Carried: map[netip.Addr]bool{},
	}
	plan := routes.Plan{
		Peers: []routes.Peer{{Name: "up"}, {Name: "down"}},
		Paths: map[string][]routes.Path{
			"up": {
				{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Services: []types.NamespacedName{api, dp, web}},
			},
			"down": {{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Services: []types.NamespacedName{web}}},
		},
	}
	adv := func(p string) bgp.Advertised {
		return bgp.Advertised{Path: routes.Path{Prefix: netip.MustParsePrefix(p)}}
	}
	sessions := map[string]bgp.Session{
		"up":   {Peer: "up", State: bgp.StateEstablished, Advertised: []bgp.Advertised{adv("203.0.113.0/24")}},
		"down": {Peer: "down", State: bgp.StateActive},
	}
	got := bgpAnnounced(in, plan, sessions)
	want := map[netip.Addr][]types.NamespacedName{ip("203.0.113.10"): {web}, ip("203.0.113.20"): {api}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Once carried, the gated IP counts; a path the server did not send does not.
	in.Carried[ip("203.0.113.30")] = true
	sessions["up"] = bgp.Session{Peer: "up", State: bgp.StateEstablished}
	if got := bgpAnnounced(in, plan, sessions); len(got) != 0 {
		t.Errorf("nothing read back from the server, got %v", got)
	}
	sessions["up"] = bgp.Session{Peer: "up", State: bgp.StateEstablished, Advertised: []bgp.Advertised{adv("203.0.113.0/24")}}
	got = bgpAnnounced(in, plan, sessions)
	if len(got[ip("203.0.113.30")]) != 1 {
		t.Errorf("carried gated IP not announced: %v", got)
	}
	series := announcedSeries(announce.Plan{}, nil, got)
	if len(series) != 3 || !series[announcedKey{"203.0.113.10", "default/web", protocolBGP}] {
		t.Errorf("series %v", series)
	}
}
