package framework

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

func TestFRRPeerConfig(t *testing.T) {
	bgpd, bfdd := frrPeerConfig(lab.NodeAt(2), FRRPeerConfig{Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("2001:db8:100::7/128")}, BFD: true})
	for _, want := range []string{
		"router bgp 64512", "bgp router-id 192.0.2.12",
		"neighbor 192.0.2.1 remote-as 64500", "neighbor 2001:db8:1::1 remote-as 64500",
		"neighbor 192.0.2.1 bfd profile fast",
		"address-family ipv4 unicast\n  neighbor 192.0.2.1 activate\n  network 203.0.113.7/32\n",
		"address-family ipv6 unicast\n  neighbor 2001:db8:1::1 activate\n  network 2001:db8:100::7/128\n",
	} {
		if !strings.Contains(bgpd, want) {
			t.Errorf("bgpd.conf lacks %q:\n%s", want, bgpd)
		}
	}
	if !strings.Contains(bfdd, "detect-multiplier 3") {
		t.Errorf("bfdd.conf: %s", bfdd)
	}
	noBFD, _ := frrPeerConfig(lab.NodeAt(1), FRRPeerConfig{})
	if strings.Contains(noBFD, "bfd") {
		t.Error("BFD configured although off")
	}
	if strings.Contains(bgpd, "LINKBW") || strings.Contains(noBFD, "LINKBW") {
		t.Error("link bandwidth configured although not asked for")
	}
	lbw, _ := frrPeerConfig(lab.NodeAt(1), FRRPeerConfig{LinkBandwidthMbps: 200, LinkBandwidthNonTransitive: true})
	for _, want := range []string{
		"route-map LINKBW permit 10\n set extcommunity bandwidth 200 non-transitive\n",
		"neighbor 192.0.2.1 route-map LINKBW out\n", "neighbor 2001:db8:1::1 route-map LINKBW out\n",
	} {
		if !strings.Contains(lbw, want) {
			t.Errorf("bgpd.conf lacks %q:\n%s", want, lbw)
		}
	}
}

func TestParseAnswer(t *testing.T) {
	a, err := ParseAnswer("pod=web-1 node=ls-node2 client=198.51.100.10:4242\n")
	if err != nil || a != (Answer{Pod: "web-1", Node: "ls-node2", Client: "198.51.100.10:4242"}) {
		t.Errorf("ParseAnswer = %+v, %v", a, err)
	}
	if _, err := ParseAnswer("<html>503</html>"); err == nil {
		t.Error("not an answer accepted")
	}
}

func TestProbeResultMaxGap(t *testing.T) {
	if (ProbeResult{}).MaxGap() != 0 {
		t.Error("empty result has a gap")
	}
	t0 := time.Unix(1000, 0)
	r := ProbeResult{Gaps: []Gap{
		{From: t0, To: t0.Add(20 * time.Millisecond)},
		{From: t0.Add(time.Second), To: t0.Add(time.Second + 350*time.Millisecond)},
		{From: t0.Add(2 * time.Second), To: t0.Add(2*time.Second + 5*time.Millisecond)},
	}}
	if got := r.MaxGap(); got != 350*time.Millisecond {
		t.Errorf("MaxGap = %v, want 350ms", got)
	}
}
