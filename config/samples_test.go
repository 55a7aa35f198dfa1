package config_test

import (
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// TestSamplesBuildCleanly checks that the samples together are a valid configuration for
// api/model too (no overlaps, every reference resolves), not just valid objects one by one.
func TestSamplesBuildCleanly(t *testing.T) {
	var snap model.Snapshot
	for _, u := range readSamples(t, filepath.Join(testenv.RepoRoot(), "config", "samples")) {
		obj, err := scheme(t).New(v1beta1.GroupVersion.WithKind(u.GetKind()))
		if err != nil {
			t.Fatalf("unknown sample kind %q: %v", u.GetKind(), err)
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
			t.Fatalf("sample %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if err := snap.Add(obj); err != nil {
			t.Fatalf("sample %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	cfg, problems := model.Build(snap)
	for _, p := range problems {
		t.Errorf("sample problem: %s", p)
	}
	if got := cfg.BGPAdvertisements["to-router"]; got == nil || len(got.Pools) != 1 || got.Pools[0] != "public" || len(got.Communities) != 3 {
		t.Errorf("BGPAdvertisement to-router resolved to %+v, want pool public and 3 communities", got)
	}
	if got := cfg.BGPPeers["router"]; got == nil || got.BFDProfile != "fast" || got.PasswordSecret == nil {
		t.Errorf("BGPPeer router resolved to %+v", got)
	}
}
