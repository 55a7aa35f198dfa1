package routes

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
)

// rich is an input that exercises every rule at once, with problems of several kinds.
func rich(r *rand.Rand) Input {
	in := base()
	cfg := in.Config
	cfg.BGPPeers["r4"].RouterID = netip.MustParseAddr("10.0.0.9")
	cfg.BGPPeers["r6"].RouterID = netip.MustParseAddr("10.0.0.10")
	cfg.BGPPeers["ibgp"].BFDProfile, cfg.BGPPeers["ibgp"].StrictBFD = "fast", true
	cfg.BGPPeers["md5"] = modelPeer("md5", "192.0.2.3", 64500, 64502)
	cfg.BGPPeers["md5"].PasswordSecret = &secretRef
	cfg.BGPAdvertisements["all"].Communities = []model.CommunityValue{std(1, 2), large(3, 2, 1)}
	cfg.BGPAdvertisements["all"].LocalPref = 50
	agg := ad("agg", "v4", "v6")
	agg.AggregationLength, agg.AggregationLengthV6 = 28, 120
	agg.Communities = []model.CommunityValue{std(1, 1), std(1, 2), large(1, 1, 1), large(3, 2, 1), large(0, 5, 5)}
	agg.LocalPref = 70
	agg.Peers = []string{"ibgp", "r6"}
	cfg.BGPAdvertisements["agg"] = agg
	in.BFDUp = map[string]bool{"ibgp": true}
	in.Services = nil
	for i := range 12 {
		k := types.NamespacedName{Namespace: fmt.Sprintf("ns%d", i%3), Name: fmt.Sprintf("s%d", i)}
		ips := []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i%5*20)}), netip.MustParseAddr(fmt.Sprintf("2001:db8:100::%x", 0x10+i%4))}
		counts := map[string]int{}
		for _, n := range []string{"n1", "n2", "n3"} {
			if r.IntN(3) == 0 {
				counts[n] = r.IntN(4)
			}
		}
		s := Service{Key: k, IPs: ips, LocalTraffic: r.IntN(2) == 0, ReadyCounts: counts}
		for _, c := range counts {
			s.HasReadyEndpoint = s.HasReadyEndpoint || c > 0
		}
		in.Services = append(in.Services, s)
	}
	return in
}

// shuffle permutes every list of the input whose order carries no meaning.
func shuffle(r *rand.Rand, in *Input) {
	r.Shuffle(len(in.Services), func(i, j int) { in.Services[i], in.Services[j] = in.Services[j], in.Services[i] })
	for i := range in.Services {
		ips := slices.Clone(in.Services[i].IPs)
		r.Shuffle(len(ips), func(a, b int) { ips[a], ips[b] = ips[b], ips[a] })
		in.Services[i].IPs = ips
	}
	r.Shuffle(len(in.Nodes), func(i, j int) { in.Nodes[i], in.Nodes[j] = in.Nodes[j], in.Nodes[i] })
	for _, a := range in.Config.BGPAdvertisements {
		r.Shuffle(len(a.Communities), func(i, j int) { a.Communities[i], a.Communities[j] = a.Communities[j], a.Communities[i] })
		r.Shuffle(len(a.Peers), func(i, j int) { a.Peers[i], a.Peers[j] = a.Peers[j], a.Peers[i] })
	}
}

func TestComputeOrderDoesNotMatter(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		want := Compute(rich(rand.New(rand.NewPCG(seed, 2))))
		if len(want.Problems) < 2 || len(want.Paths) < 2 {
			t.Fatalf("seed %d: the input is not rich enough: %+v", seed, want)
		}
		for range 10 {
			in := rich(rand.New(rand.NewPCG(seed, 2)))
			shuffle(r, &in)
			if diff := cmp.Diff(want, Compute(in), cmpNet); diff != "" {
				t.Fatalf("seed %d: Compute depends on input order (-first +shuffled):\n%s", seed, diff)
			}
		}
	}
}

// TestComputeInvariants checks on random inputs what must hold of every Plan.
func TestComputeInvariants(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 3))
		in := rich(r)
		in.BFDUp = map[string]bool{"ibgp": r.IntN(2) == 0}
		in.Nodes[0].Ready = r.IntN(5) > 0
		plan := Compute(in)
		peers := map[string]Peer{}
		for i, p := range plan.Peers {
			peers[p.Name] = p
			if i > 0 && plan.Peers[i-1].Name >= p.Name {
				t.Fatalf("seed %d: peers not sorted: %v", seed, plan.Peers)
			}
		}
		if !in.Nodes[0].Ready && len(plan.Paths) > 0 {
			t.Fatalf("seed %d: a node that is not Ready advertises %v", seed, plan.Paths)
		}
		for name, paths := range plan.Paths {
			p, ok := peers[name]
			if !ok || len(paths) == 0 {
				t.Fatalf("seed %d: paths for %q, not a plan peer or empty", seed, name)
			}
			if p.BFD != nil && p.BFD.Strict && !in.BFDUp[name] {
				t.Fatalf("seed %d: strict peer %q with BFD down has paths", seed, name)
			}
			for i, path := range paths {
				if i > 0 && paths[i-1].Prefix.Compare(path.Prefix) >= 0 {
					t.Fatalf("seed %d: paths of %q not sorted or duplicated: %v", seed, name, paths)
				}
				if path.Prefix.Addr().Is4() != p.Address.Is4() {
					t.Fatalf("seed %d: %s sent to peer %q of the other family", seed, path.Prefix, name)
				}
				if path.Prefix != path.Prefix.Masked() || len(path.Services) == 0 {
					t.Fatalf("seed %d: path %+v", seed, path)
				}
				if path.HasLocalPref && !p.IBGP() {
					t.Fatalf("seed %d: LOCAL_PREF to eBGP peer %q", seed, name)
				}
				if path.LinkBandwidth != 0 && (path.Prefix.Bits() != path.Prefix.Addr().BitLen() || int(path.LinkBandwidth)%BandwidthPerEndpoint != 0) {
					t.Fatalf("seed %d: link bandwidth %v on %s", seed, path.LinkBandwidth, path.Prefix)
				}
				if !slices.IsSorted(path.Communities) || len(slices.Compact(slices.Clone(path.Communities))) != len(path.Communities) {
					t.Fatalf("seed %d: communities %v", seed, path.Communities)
				}
			}
		}
	}
}
