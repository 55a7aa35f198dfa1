package model

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

func TestSnapshotAdd(t *testing.T) {
	var s Snapshot
	for _, o := range []any{
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}},
		&v1beta1.L2Advertisement{}, &v1beta1.BGPPeer{}, &v1beta1.BGPAdvertisement{},
		&v1beta1.BFDProfile{}, &v1beta1.Community{},
	} {
		if err := s.Add(o); err != nil {
			t.Errorf("Add(%T): %v", o, err)
		}
	}
	if len(s.Pools) != 1 || s.Pools[0].Name != "p" || len(s.L2Advertisements) != 1 || len(s.BGPPeers) != 1 ||
		len(s.BGPAdvertisements) != 1 || len(s.BFDProfiles) != 1 || len(s.Communities) != 1 {
		t.Errorf("snapshot after one of each kind: %+v", s)
	}
	if err := s.Add(v1beta1.IPAddressPool{}); err == nil {
		t.Error("a value (not a pointer) was accepted")
	}
	if err := s.Add(&metav1.Status{}); err == nil {
		t.Error("a foreign type was accepted")
	}
}
