package config_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/internal/testenv"
	"github.com/loadstone-lb/loadstone/speaker/report"
)

// readSamples returns every object of every YAML file in dir, in file order.
func readSamples(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			objs = append(objs, u)
		}
	}
	if len(objs) == 0 {
		t.Fatalf("no samples in %s", dir)
	}
	return objs
}

func fromYAML(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(s), &u.Object); err != nil {
		t.Fatalf("bad test YAML: %v\n%s", err, s)
	}
	return u
}

// TestCRDs runs against one real kube-apiserver with the generated CRDs installed.
func TestCRDs(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	c := env.Client

	t.Run("samples are accepted", func(t *testing.T) {
		objs := readSamples(t, filepath.Join(testenv.RepoRoot(), "config", "samples"))
		kinds := map[string]bool{}
		for _, u := range objs {
			kinds[u.GetKind()] = true
			if err := c.Create(ctx, u); err != nil {
				t.Errorf("sample %s %s rejected: %v", u.GetKind(), u.GetName(), err)
			}
		}
		for _, k := range []string{"IPAddressPool", "L2Advertisement", "BGPPeer", "BGPAdvertisement", "BFDProfile", "Community"} {
			if !kinds[k] {
				t.Errorf("no sample of kind %s in config/samples", k)
			}
		}
	})

	t.Run("defaults are applied", func(t *testing.T) {
		testDefaults(ctx, t, c)
	})

	t.Run("invalid objects are rejected with their message", func(t *testing.T) {
		for _, tc := range invalidCases {
			t.Run(tc.name, func(t *testing.T) {
				u := fromYAML(t, tc.yaml)
				if u.GetName() == "" {
					u.SetName("bad")
				}
				err := c.Create(ctx, u, client.DryRunAll)
				if err == nil {
					t.Fatalf("accepted, want rejection containing %q", tc.want)
				}
				if !apierrors.IsInvalid(err) {
					t.Fatalf("error is not Invalid: %v", err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error does not contain %q:\n%v", tc.want, err)
				}
				for _, not := range tc.notWant {
					if strings.Contains(err.Error(), not) {
						t.Errorf("error contains unrelated %q:\n%v", not, err)
					}
				}
			})
		}
	})

	t.Run("valid edge cases are accepted", func(t *testing.T) {
		for _, tc := range validCases {
			t.Run(tc.name, func(t *testing.T) {
				u := fromYAML(t, tc.yaml)
				if u.GetName() == "" {
					u.SetName("edge")
				}
				if err := c.Create(ctx, u, client.DryRunAll); err != nil {
					t.Fatalf("rejected: %v", err)
				}
			})
		}
	})

	t.Run("conditions go through the status subresource", func(t *testing.T) {
		testConditions(ctx, t, c)
	})

	t.Run("BGPSessionStatus as the speaker renders it", func(t *testing.T) {
		testBGPSessionStatus(ctx, t, c)
	})

	t.Run("range order rule agrees with netip", func(t *testing.T) {
		testRangeOrder(ctx, t, c)
	})
}

func testDefaults(ctx context.Context, t *testing.T, c client.Client) {
	pool := &v1beta1.IPAddressPool{}
	pool.Name = "defaults"
	pool.Spec.Addresses = []string{"198.51.100.0/30"}
	peer := &v1beta1.BGPPeer{}
	peer.Name = "defaults"
	peer.Spec = v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "192.0.2.254",
		PasswordSecret: &v1beta1.SecretKeyReference{Name: "s", Namespace: "ns"}}
	adv := &v1beta1.BGPAdvertisement{}
	adv.Name = "defaults"
	bfd := &v1beta1.BFDProfile{}
	bfd.Name = "defaults"
	for _, o := range []client.Object{pool, peer, adv, bfd} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
	}
	check := func(what string, got *int32, want int32) {
		t.Helper()
		if got == nil || *got != want {
			t.Errorf("%s: got %v, want default %d", what, got, want)
		}
	}
	if pool.Spec.AutoAssign == nil || !*pool.Spec.AutoAssign {
		t.Errorf("IPAddressPool autoAssign: got %v, want default true", pool.Spec.AutoAssign)
	}
	check("BGPPeer peerPort", peer.Spec.PeerPort, 179)
	if peer.Spec.PasswordSecret.Key != "password" {
		t.Errorf("BGPPeer passwordSecret.key: got %q, want default %q", peer.Spec.PasswordSecret.Key, "password")
	}
	check("BGPAdvertisement aggregationLength", adv.Spec.AggregationLength, 32)
	check("BGPAdvertisement aggregationLengthV6", adv.Spec.AggregationLengthV6, 128)
	check("BFDProfile receiveInterval", bfd.Spec.ReceiveInterval, 300)
	check("BFDProfile transmitInterval", bfd.Spec.TransmitInterval, 300)
	check("BFDProfile detectMultiplier", bfd.Spec.DetectMultiplier, 3)
	check("BFDProfile minimumTtl", bfd.Spec.MinimumTTL, 254)

	// An object without a spec gets the spec defaults too.
	bare := fromYAML(t, "apiVersion: loadstone.io/v1beta1\nkind: BFDProfile\nmetadata: {name: bare}\n")
	if err := c.Create(ctx, bare); err != nil {
		t.Fatalf("create BFDProfile without spec: %v", err)
	}
	if got, _, _ := unstructured.NestedInt64(bare.Object, "spec", "detectMultiplier"); got != 3 {
		t.Errorf("BFDProfile without spec: detectMultiplier %d, want default 3", got)
	}
	bareAdv := fromYAML(t, "apiVersion: loadstone.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bare}\n")
	if err := c.Create(ctx, bareAdv); err != nil {
		t.Fatalf("create BGPAdvertisement without spec: %v", err)
	}
	if got, _, _ := unstructured.NestedInt64(bareAdv.Object, "spec", "aggregationLength"); got != 32 {
		t.Errorf("BGPAdvertisement without spec: aggregationLength %d, want default 32", got)
	}

	// Status goes through the status subresource, and a spec write ignores it.
	pool.Status.IPv4Assigned = 1
	pool.Status.IPv4Available = 3
	if err := c.Status().Update(ctx, pool); err != nil {
		t.Fatalf("status update: %v", err)
	}
	got := &v1beta1.IPAddressPool{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pool), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.IPv4Assigned != 1 || got.Status.IPv4Available != 3 {
		t.Errorf("status after status update: %+v", got.Status)
	}
	got.Status.IPv4Assigned = 99
	if err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.IPv4Assigned != 1 {
		t.Errorf("a spec update changed status: ipv4Assigned=%d, want 1", got.Status.IPv4Assigned)
	}
}

// testConditions writes a Valid condition (as the controller does, from api/model) to every
// kind that has a status, and reads it back; a spec update must not touch it.
func testConditions(ctx context.Context, t *testing.T, c client.Client) {
	l2 := &v1beta1.L2Advertisement{}
	peer := &v1beta1.BGPPeer{Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "192.0.2.253"}}
	adv := &v1beta1.BGPAdvertisement{}
	comm := &v1beta1.Community{Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "cond", Value: "64500:7"}}}}
	conds := map[client.Object]*[]metav1.Condition{
		l2: &l2.Status.Conditions, peer: &peer.Status.Conditions, adv: &adv.Status.Conditions, comm: &comm.Status.Conditions,
	}
	for o, list := range conds {
		o.SetName("conditions")
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
		cond := model.ValidCondition(nil, []model.Problem{{Kind: "X", Name: "conditions", Message: "broken on purpose"}}, "X", "conditions", o.GetGeneration())
		cond.LastTransitionTime = metav1.Now()
		meta.SetStatusCondition(list, cond)
		if err := c.Status().Update(ctx, o); err != nil {
			t.Fatalf("status update %T: %v", o, err)
		}
		if err := c.Update(ctx, o); err != nil { // a spec write carrying the same status
			t.Fatalf("update %T: %v", o, err)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		got := meta.FindStatusCondition(*list, v1beta1.ConditionValid)
		if got == nil || got.Status != metav1.ConditionFalse || got.Reason != v1beta1.ReasonInvalid || !strings.Contains(got.Message, "broken on purpose") {
			t.Errorf("%T: Valid condition read back as %+v", o, got)
		}
	}
}

// testRangeOrder checks the CEL rule that rejects reversed ranges (which compares
// zero-padded textual forms, since CEL cannot order IP addresses) against netip's order, on
// random pairs of close and far addresses of both families, through the real API server.
func testRangeOrder(ctx context.Context, t *testing.T, c client.Client) {
	r := rand.New(rand.NewPCG(1, 2))
	addr := func(v6 bool) netip.Addr {
		if !v6 {
			var b [4]byte
			for i := range b {
				b[i] = byte(r.IntN(4) * 63) // few distinct octets: many near-equal pairs
			}
			return netip.AddrFrom4(b)
		}
		var b [16]byte
		for i := range b {
			if r.IntN(3) != 0 { // many zero bytes: '::' compression at varying places
				b[i] = byte(r.IntN(3) * 0x7f)
			}
		}
		return netip.AddrFrom16(b)
	}
	const n = 150
	for i := range n {
		v6 := i%2 == 1
		a, b := addr(v6), addr(v6)
		if i%10 == 0 {
			b = a // equal ends
		}
		rangeStr := a.String() + "-" + b.String()
		if i%3 == 0 && v6 {
			rangeStr = a.StringExpanded() + " - " + b.String() // uncompressed form, spaces
		}
		u := fromYAML(t, fmt.Sprintf("apiVersion: loadstone.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: order-%d}\nspec: {addresses: [%q]}\n", i, rangeStr))
		err := c.Create(ctx, u, client.DryRunAll)
		wantOK := a.Compare(b) <= 0
		switch {
		case wantOK && err != nil:
			t.Errorf("%s: rejected, want accepted: %v", rangeStr, err)
		case !wantOK && err == nil:
			t.Errorf("%s: accepted, want rejected as reversed", rangeStr)
		case !wantOK && !strings.Contains(err.Error(), "is reversed"):
			t.Errorf("%s: rejected for another reason: %v", rangeStr, err)
		}
	}
}

// testBGPSessionStatus writes BGPSessionStatus objects rendered by the speaker's diff
// (speaker/report) through the status subresource, at the schema's limits, and checks
// that the API server keeps them as written and that the next diff is empty; values
// outside the schema are rejected.
func testBGPSessionStatus(ctx context.Context, t *testing.T, c client.Client) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	router := netip.MustParseAddr("192.0.2.254")
	full := report.BGPSession{Peer: "router", Address: router, State: v1beta1.BGPStateEstablished,
		EstablishedSince: now.Add(-time.Hour + 250*time.Millisecond), NegotiatedHold: 9 * time.Second, NegotiatedKeepalive: 3 * time.Second,
		LastError: strings.Repeat("x", 5000), BFDProfile: "fast", BFDState: v1beta1.BFDStateUp,
		BFDLastDownDiag: "ControlDetectionTimeExpired", BFDLastDown: now.Add(-2 * time.Hour),
		Problems: []string{`Secret loadstone-system/bgp does not exist`}}
	for i := range v1beta1.MaxAdvertisedPaths + 10 {
		full.Advertised = append(full.Advertised, report.AdvertisedPath{
			Prefix:  netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, byte(i >> 8), byte(i)}), 128),
			NextHop: netip.MustParseAddr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), Communities: []uint32{0xffffffff, 1},
			LargeCommunities: [][3]uint32{{4294967295, 4294967295, 4294967295}}, LocalPref: 4294967295, HasLocalPref: true, LinkBandwidth: 3.4e38})
	}
	sessions := []report.BGPSession{full,
		{Peer: "idle-" + strings.Repeat("p", 240), Address: netip.MustParseAddr("2001:db8::1"), State: v1beta1.BGPStateIdle}}
	node := strings.Repeat("n", 60) + ".example.net" // a dotted, long node name: hashed name and label
	plan := report.BGPStatuses(now, node, "uid-node", sessions, nil)
	if len(plan.Create) != 2 {
		t.Fatalf("plan %+v", plan)
	}
	for _, st := range plan.Create {
		status := st.Status
		if err := c.Create(ctx, st); err != nil {
			t.Fatalf("create %s: %v", st.Name, err)
		}
		st.Status = status
		if err := c.Status().Update(ctx, st); err != nil {
			t.Fatalf("status update %s: %v", st.Name, err)
		}
	}
	var list v1beta1.BGPSessionStatusList
	if err := c.List(ctx, &list, client.MatchingLabels{v1beta1.LabelStatusNode: report.LabelValue(node)}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("listed %d objects by the node label, want 2", len(list.Items))
	}
	if p := report.BGPStatuses(now.Add(time.Minute), node, "uid-node", sessions, list.Items); !p.Empty() {
		t.Errorf("the diff after writing is not empty: %d creates, %d updates, %d deletes", len(p.Create), len(p.Update), len(p.Delete))
		for _, u := range p.Update {
			t.Logf("%s: %s", u.New.Name, cmp.Diff(u.Old.Status, u.New.Status))
		}
	}

	// What the schema rejects.
	for _, tc := range []struct {
		name   string
		status string
		want   string
	}{
		{"unknown session state", `{sessionState: Up}`, `Unsupported value: "Up"`},
		{"unknown BFD state", `{bfdState: Established}`, `Unsupported value: "Established"`},
		{"negative count", `{advertisedCount: -1}`, "should be greater than or equal to 0"},
		{"too many paths", `{advertised: [` + strings.TrimSuffix(strings.Repeat(`{prefix: "203.0.113.1/32"}, `, v1beta1.MaxAdvertisedPaths+1), ", ") + `]}`, "must have at most 1024 items"},
		{"error too long", `{lastError: "` + strings.Repeat("x", 1025) + `"}`, "Too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := fromYAML(t, "apiVersion: loadstone.io/v1beta1\nkind: BGPSessionStatus\nmetadata: {name: bad-status}\n")
			if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			if err := c.Get(ctx, client.ObjectKey{Name: "bad-status"}, u); err != nil {
				t.Fatal(err)
			}
			var status map[string]any
			if err := yaml.Unmarshal([]byte(tc.status), &status); err != nil {
				t.Fatal(err)
			}
			u.Object["status"] = status
			err := c.Status().Update(ctx, u, client.DryRunAll)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("status %.80s: got %v, want an error containing %q", tc.status, err, tc.want)
			}
		})
	}
}
