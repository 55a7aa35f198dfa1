package framework

import (
	"encoding/json"
	"slices"
	"testing"
)

// Trimmed from FRR 8.4's `show bgp ipv4 unicast 203.0.113.251/32 json` in the lab.
const frrPrefixJSON = `{"prefix":"203.0.113.251/32","paths":[
 {"aspath":{"string":"64512"},"multipath":true,
  "community":{"string":"64512:100 65000:7"},"largeCommunity":{"string":"64512:1:2"},
  "extendedCommunity":{"string":"RT:1:1 LB:64512:125000 (1.000 Mbps)"},
  "nexthops":[{"ip":"192.0.2.12","used":true}],"peer":{"peerId":"192.0.2.12"}},
 {"aspath":{"string":"64512"},"multipath":true,"locPrf":200,"bestpath":{"overall":true},
  "extendedCommunity":{"string":"LB:64512:250000 (2.000 Mbps)"},
  "nexthops":[{"ip":"192.0.2.11","used":true}],"peer":{"peerId":"192.0.2.11"}}]}`

func TestParseBGPPaths(t *testing.T) {
	var raw frrBGPPrefix
	if err := json.Unmarshal([]byte(frrPrefixJSON), &raw); err != nil {
		t.Fatal(err)
	}
	ps := parseBGPPaths(raw)
	if len(ps) != 2 || ps[0].Peer != "192.0.2.11" || ps[1].Peer != "192.0.2.12" {
		t.Fatalf("paths %+v", ps)
	}
	a, b := ps[0], ps[1]
	if !a.Best || a.LocalPref != 200 || a.LinkBandwidth != 250000 || !slices.Equal(a.Nexthops, []string{"192.0.2.11"}) {
		t.Errorf("first path %+v", a)
	}
	if b.Best || !b.Multipath || b.LinkBandwidth != 125000 ||
		!slices.Equal(b.Communities, []string{"64512:100", "65000:7"}) ||
		!slices.Equal(b.LargeCommunities, []string{"64512:1:2"}) ||
		!slices.Equal(b.ExtCommunities, []string{"RT:1:1", "LB:64512:125000 (1.000 Mbps)"}) {
		t.Errorf("second path %+v", b)
	}
}

func TestNexthopWeights(t *testing.T) {
	var rs []KernelRoute
	// `ip -j route show exact 203.0.113.250/32` on the lab router.
	if err := json.Unmarshal([]byte(`[{"dst":"203.0.113.250","protocol":"bgp","nexthops":[{"gateway":"192.0.2.12","dev":"br0","weight":33},{"gateway":"192.0.2.11","dev":"br0","weight":66}]}]`), &rs); err != nil {
		t.Fatal(err)
	}
	got := NexthopWeights(rs)
	if got["192.0.2.11"] != 66 || got["192.0.2.12"] != 33 || len(got) != 2 {
		t.Fatalf("weights %v", got)
	}
	if !WeightsProportional(got, map[string]int{"192.0.2.11": 2, "192.0.2.12": 1}) {
		t.Error("66/33 not proportional to 2:1")
	}
	if WeightsProportional(got, map[string]int{"192.0.2.11": 1, "192.0.2.12": 1}) {
		t.Error("66/33 taken for 1:1")
	}
	if WeightsProportional(got, map[string]int{"192.0.2.11": 2, "192.0.2.13": 1}) {
		t.Error("wrong next hop accepted")
	}
	single := NexthopWeights([]KernelRoute{{Gateway: "192.0.2.13"}})
	if !WeightsProportional(single, map[string]int{"192.0.2.13": 1}) {
		t.Errorf("single path %v", single)
	}
}
