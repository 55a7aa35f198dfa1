package config_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	obj, err := scheme(t).New(v1beta1.GroupVersion.WithKind(head.Kind))
	if err != nil {
		t.Fatalf("unknown kind %q: %v", head.Kind, err)
	}
	var snap model.Snapshot
	if err := yaml.Unmarshal([]byte(s), obj); err != nil {
		return snap, false
	}
	if err := snap.Add(obj); err != nil {
		t.Fatal(err)
	}
	return snap, true
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
			for _, p := range snap.BGPPeers { // and a BFD profile reference needs its profile
				if p.Spec.BFDProfile != "" {
					snap.BFDProfiles = append(snap.BFDProfiles, v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: p.Spec.BFDProfile}})
				}
			}
			if _, problems := model.Build(snap); len(problems) != 0 {
				t.Errorf("problems: %v", problems)
			}
		})
	}
}

// scheme knows the v1beta1 kinds, to make a typed object from a kind name.
func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	sc := runtime.NewScheme()
	if err := v1beta1.AddToScheme(sc); err != nil {
		t.Fatal(err)
	}
	return sc
}
