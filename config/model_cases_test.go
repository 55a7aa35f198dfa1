package config_test

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// decodeInto decodes a test object into a Snapshot holding just it. It returns false when
// the typed decoding itself fails (as a typed client would).
func decodeInto(t *testing.T, s string) (model.Snapshot, bool) {
	t.Helper()
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal([]byte(s), &head); err != nil {
		t.Fatal(err)
	}
	var snap model.Snapshot
	var err error
	switch head.Kind {
	case "IPAddressPool":
		var o v1beta1.IPAddressPool
		err = yaml.Unmarshal([]byte(s), &o)
		snap.Pools = append(snap.Pools, o)
	case "L2Advertisement":
		var o v1beta1.L2Advertisement
		err = yaml.Unmarshal([]byte(s), &o)
		snap.L2Advertisements = append(snap.L2Advertisements, o)
	case "BGPPeer":
		var o v1beta1.BGPPeer
		err = yaml.Unmarshal([]byte(s), &o)
		snap.BGPPeers = append(snap.BGPPeers, o)
	case "BGPAdvertisement":
		var o v1beta1.BGPAdvertisement
		err = yaml.Unmarshal([]byte(s), &o)
		snap.BGPAdvertisements = append(snap.BGPAdvertisements, o)
	case "BFDProfile":
		var o v1beta1.BFDProfile
		err = yaml.Unmarshal([]byte(s), &o)
		snap.BFDProfiles = append(snap.BFDProfiles, o)
	case "Community":
		var o v1beta1.Community
		err = yaml.Unmarshal([]byte(s), &o)
		snap.Communities = append(snap.Communities, o)
	default:
		t.Fatalf("unknown kind %q", head.Kind)
	}
	return snap, err == nil
}

// TestModelRejectsInvalidCases checks that api/model, which must not trust the API server,
// rejects every object the CRDs reject, with the same message where the rule is the same.
func TestModelRejectsInvalidCases(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			snap, ok := decodeInto(t, tc.yaml)
			if !ok {
				return // a typed client cannot even decode it
			}
			_, problems := model.Build(snap)
			if len(problems) == 0 {
				t.Fatalf("api/model accepts what the CRD rejects with %q", tc.want)
			}
			want := tc.modelWant
			if want == "" {
				want = tc.want
			}
			for _, p := range problems {
				if strings.Contains(p.String(), want) {
					return
				}
			}
			t.Errorf("no problem contains %q: %v", want, problems)
		})
	}
}

// TestModelAcceptsValidCases checks the edge cases the CRDs accept.
func TestModelAcceptsValidCases(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			snap, ok := decodeInto(t, tc.yaml)
			if !ok {
				t.Fatal("does not decode")
			}
			for i := range snap.BGPAdvertisements {
				snap.BGPAdvertisements[i].Spec.Communities = nil // aliases need Community objects
			}
			if _, problems := model.Build(snap); len(problems) != 0 {
				t.Errorf("problems: %v", problems)
			}
		})
	}
}
