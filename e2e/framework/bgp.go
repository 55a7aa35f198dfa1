package framework

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// LoadstoneClient returns a controller-runtime client that knows Loadstone's types and
// the built-in ones (cached per Env).
func (e *Env) LoadstoneClient() client.Client {
	e.T.Helper()
	if e.crc != nil {
		return e.crc
	}
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		e.T.Fatal(err)
	}
	if err := v1beta1.AddToScheme(s); err != nil {
		e.T.Fatal(err)
	}
	c, err := client.New(e.Config, client.Options{Scheme: s})
	if err != nil {
		e.T.Fatal(err)
	}
	e.crc = c
	return c
}

// CreateObject creates a Loadstone (or any) object and deletes it when the test ends.
func (e *Env) CreateObject(obj client.Object) {
	e.T.Helper()
	c := e.LoadstoneClient()
	if err := c.Create(e.Context(), obj); err != nil {
		e.T.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
	e.T.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Delete(ctx, obj)
	})
}

// UpdateObject reads obj (by its name and namespace), applies mutate, and writes it back,
// retrying on conflicts.
func (e *Env) UpdateObject(obj client.Object, mutate func()) {
	e.T.Helper()
	c := e.LoadstoneClient()
	e.Eventually(fmt.Sprintf("update of %T %s", obj, obj.GetName()), 30*time.Second, func() (bool, error) {
		if err := c.Get(e.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err
		}
		mutate()
		err := c.Update(e.Context(), obj)
		return err == nil, err
	})
}

// BFDProfile returns a BFDProfile (not yet created) with the given timers in ms.
func BFDProfile(name string, rxMs, txMs, mult int32) *v1beta1.BFDProfile {
	return &v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.BFDProfileSpec{ReceiveInterval: &rxMs, TransmitInterval: &txMs, DetectMultiplier: &mult}}
}

// RouterPeer returns a BGPPeer (not yet created) to the lab router: IPv4 session to
// lab.RouterIP or, with ipv6, lab.RouterIP6; myASN lab.NodeASN, peerASN lab.RouterASN,
// hold time 9 s and keepalive 3 s like the router's; bfdProfile as given ("" for none).
func RouterPeer(name string, ipv6 bool, bfdProfile string) *v1beta1.BGPPeer {
	addr := lab.RouterIP
	if ipv6 {
		addr = lab.RouterIP6
	}
	return &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.BGPPeerSpec{
		MyASN: lab.NodeASN, PeerASN: lab.RouterASN, PeerAddress: addr,
		HoldTime:      &metav1.Duration{Duration: 9 * time.Second},
		KeepaliveTime: &metav1.Duration{Duration: 3 * time.Second},
		BFDProfile:    bfdProfile,
	}}
}

// BGPAdvertisement returns a BGPAdvertisement (not yet created) of the given pools.
func BGPAdvertisement(name string, pools ...string) *v1beta1.BGPAdvertisement {
	return &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: pools}}
}

// BGPPath is one path of a prefix in the router's BGP table, with its attributes.
type BGPPath struct {
	// Peer is the neighbour the path came from; Nexthops its next hops.
	Peer     string
	Nexthops []string
	ASPath   string
	// LocalPref is 0 when absent (eBGP paths carry none).
	LocalPref        int
	Communities      []string
	LargeCommunities []string
	// ExtCommunities are FRR's rendering, e.g. "LB:64512:125000 (1.000 Mbps)".
	ExtCommunities []string
	// LinkBandwidth is the link-bandwidth community's value in bytes/s (0 when absent).
	LinkBandwidth float64
	Best          bool
	Multipath     bool
}

type frrBGPPrefix struct {
	Paths []struct {
		ASPath struct {
			String string `json:"string"`
		} `json:"aspath"`
		LocPrf    int `json:"locPrf"`
		Community struct {
			String string `json:"string"`
		} `json:"community"`
		LargeCommunity struct {
			String string `json:"string"`
		} `json:"largeCommunity"`
		ExtendedCommunity struct {
			String string `json:"string"`
		} `json:"extendedCommunity"`
		Multipath bool `json:"multipath"`
		Bestpath  struct {
			Overall bool `json:"overall"`
		} `json:"bestpath"`
		Nexthops []struct {
			IP string `json:"ip"`
		} `json:"nexthops"`
		Peer struct {
			PeerID string `json:"peerId"`
		} `json:"peer"`
	} `json:"paths"`
}

// lbRE matches FRR's rendering of a link-bandwidth community: LB:<AS>:<bytes/s>.
var lbRE = regexp.MustCompile(`^LB:\d+:(\d+)`)

// parseBGPPaths turns FRR's `show bgp <afi> unicast <prefix> json` into paths sorted by
// peer (pure).
func parseBGPPaths(raw frrBGPPrefix) []BGPPath {
	var out []BGPPath
	for _, p := range raw.Paths {
		bp := BGPPath{Peer: p.Peer.PeerID, ASPath: p.ASPath.String, LocalPref: p.LocPrf,
			Communities:      strings.Fields(p.Community.String),
			LargeCommunities: strings.Fields(p.LargeCommunity.String),
			Best:             p.Bestpath.Overall, Multipath: p.Multipath}
		for _, nh := range p.Nexthops {
			bp.Nexthops = append(bp.Nexthops, nh.IP)
		}
		// Extended communities are space separated; the LB one carries " (N Mbps)".
		fs := strings.Fields(p.ExtendedCommunity.String)
		for i := 0; i < len(fs); i++ {
			c := fs[i]
			if i+2 < len(fs) && strings.HasPrefix(fs[i+1], "(") {
				c += " " + fs[i+1] + " " + fs[i+2]
				i += 2
			}
			bp.ExtCommunities = append(bp.ExtCommunities, c)
			if m := lbRE.FindStringSubmatch(c); m != nil {
				bp.LinkBandwidth, _ = strconv.ParseFloat(m[1], 64)
			}
		}
		out = append(out, bp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// BGPPaths returns the router's BGP paths for a prefix (none: an empty result).
func (e *Env) BGPPaths(p netip.Prefix) ([]BGPPath, error) {
	afi := "ipv4"
	if p.Addr().Is6() {
		afi = "ipv6"
	}
	var raw frrBGPPrefix
	if err := e.VtyshJSON(fmt.Sprintf("show bgp %s unicast %s json", afi, p), &raw); err != nil {
		return nil, err
	}
	return parseBGPPaths(raw), nil
}

// BGPSession is FRR's view of one BGP neighbour, enough to tell whether a session was
// reset: a reset adds to EstablishedCount (or, for a dynamic neighbour, which FRR
// deletes when it goes down, moves EstablishedEpoch forward).
type BGPSession struct {
	Address string
	State   string `json:"bgpState"`
	// UptimeMs is how long the session has been Established.
	UptimeMs int64 `json:"bgpTimerUpMsec"`
	// EstablishedEpoch is when it was established (Unix seconds).
	EstablishedEpoch int64 `json:"bgpTimerUpEstablishedEpoch"`
	// EstablishedCount and DroppedCount count transitions into and out of Established.
	EstablishedCount int `json:"connectionsEstablished"`
	DroppedCount     int `json:"connectionsDropped"`
	// Hostname the peer announced (FRR's hostname capability), if any.
	Hostname     string `json:"hostname"`
	RemoteAS     uint32 `json:"remoteAs"`
	LastResetDue string `json:"lastResetDueTo"`
	BFD          struct {
		Status string `json:"status"`
	} `json:"peerBfdInfo"`
	GracefulRestart string `json:"-"`
	Capabilities    struct {
		GracefulRestart string `json:"gracefulRestart"`
	} `json:"neighborCapabilities"`
}

// BGPSessions returns FRR's neighbours by address (both families).
func (e *Env) BGPSessions() (map[string]BGPSession, error) {
	raw := map[string]BGPSession{}
	if err := e.VtyshJSON("show bgp neighbors json", &raw); err != nil {
		return nil, err
	}
	for a, s := range raw {
		s.Address = a
		s.GracefulRestart = s.Capabilities.GracefulRestart
		raw[a] = s
	}
	return raw, nil
}

// NexthopWeights flattens kernel routes to gateway → weight (1 for a single-path route
// or a next hop without an explicit weight, as the kernel reports it).
func NexthopWeights(rs []KernelRoute) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		if r.Gateway != "" {
			out[r.Gateway] = 1
		}
		for _, nh := range r.Nexthops {
			w := nh.Weight
			if w == 0 {
				w = 1
			}
			if nh.Gateway != "" {
				out[nh.Gateway] = w
			}
		}
	}
	return out
}

// RouterNexthopWeights returns the router's kernel next hops for p with their weights.
func RouterNexthopWeights(p netip.Prefix) (map[string]int, error) {
	rs, err := KernelRoutes(lab.RouterNS, p)
	if err != nil {
		return nil, err
	}
	return NexthopWeights(rs), nil
}

// WaitRouterWeights waits until the router's kernel routes p over exactly the given next
// hops with weights in the given proportions (weights {a:2, b:1} match the kernel's 66
// and 33), and returns the kernel's weights.
func (e *Env) WaitRouterWeights(p netip.Prefix, want map[string]int, timeout time.Duration) map[string]int {
	e.T.Helper()
	var got map[string]int
	e.Eventually(fmt.Sprintf("router route %s weighted %v", p, want), timeout, func() (bool, error) {
		var err error
		got, err = RouterNexthopWeights(p)
		if err != nil {
			return false, err
		}
		return WeightsProportional(got, want), fmt.Errorf("kernel next hops %v", got)
	})
	return got
}

// WeightsProportional tells whether got has exactly want's next hops with weights in
// want's proportions, within FRR's rounding (it maps bandwidth shares onto 1..100).
func WeightsProportional(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	gsum, wsum := 0, 0
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return false
		}
		gsum += g
		wsum += w
	}
	for k, w := range want {
		share := float64(got[k]) / float64(gsum)
		if d := share - float64(w)/float64(wsum); d > 0.03 || d < -0.03 {
			return false
		}
	}
	return true
}

// SpreadByNode sends n GETs from ns to url and counts answers per answering node.
func SpreadByNode(ctx context.Context, ns, url string, n int) map[string]int {
	out, _ := spreadBy(ctx, ns, url, n, func(a Answer) string { return a.Node })
	return out
}
