package model

import (
	"fmt"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// Add appends one configuration object (a pointer to one of the six v1beta1 kinds) to the
// snapshot, so that callers that hold objects one by one (decoded samples, test cases)
// need no switch of their own. Any other type is an error.
func (s *Snapshot) Add(obj any) error {
	switch o := obj.(type) {
	case *v1beta1.IPAddressPool:
		s.Pools = append(s.Pools, *o)
	case *v1beta1.L2Advertisement:
		s.L2Advertisements = append(s.L2Advertisements, *o)
	case *v1beta1.BGPPeer:
		s.BGPPeers = append(s.BGPPeers, *o)
	case *v1beta1.BGPAdvertisement:
		s.BGPAdvertisements = append(s.BGPAdvertisements, *o)
	case *v1beta1.BFDProfile:
		s.BFDProfiles = append(s.BFDProfiles, *o)
	case *v1beta1.Community:
		s.Communities = append(s.Communities, *o)
	default:
		return fmt.Errorf("not a Loadstone configuration object: %T", obj)
	}
	return nil
}
