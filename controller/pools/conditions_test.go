package pools

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// TestConditionsOf: kinds that nothing acts on yet get Programmed=False next to Valid, and
// their Valid=True does not say "in force"; a False Valid keeps the model's message.
func TestConditionsOf(t *testing.T) {
	const bgp = "accepted but not acted on: BGP is not implemented in this version"
	validTrue := metav1.Condition{Type: v1beta1.ConditionValid, Status: metav1.ConditionTrue, Reason: v1beta1.ReasonValid, Message: "in force", ObservedGeneration: 3}
	validFalse := metav1.Condition{Type: v1beta1.ConditionValid, Status: metav1.ConditionFalse, Reason: v1beta1.ReasonInvalid, Message: "spec.peers[0]: broken; not in force", ObservedGeneration: 3}
	programmed := metav1.Condition{Type: ConditionProgrammed, Status: metav1.ConditionFalse, Reason: ReasonNotImplemented, Message: bgp, ObservedGeneration: 3}
	withMsg := func(c metav1.Condition, msg string) metav1.Condition { c.Message = msg; return c }
	tests := []struct {
		name  string
		kind  string
		valid metav1.Condition
		want  []metav1.Condition
	}{
		{"pool", model.KindIPAddressPool, validTrue, []metav1.Condition{validTrue}},
		{"l2", model.KindL2Advertisement, validFalse, []metav1.Condition{validFalse}},
		{"peer valid", model.KindBGPPeer, validTrue, []metav1.Condition{withMsg(validTrue, "valid; "+bgp), programmed}},
		{"peer invalid", model.KindBGPPeer, validFalse, []metav1.Condition{validFalse, programmed}},
		{"bgp advertisement", model.KindBGPAdvertisement, validTrue, []metav1.Condition{withMsg(validTrue, "valid; "+bgp), programmed}},
		{"community", model.KindCommunity, validTrue, []metav1.Condition{withMsg(validTrue, "valid; "+bgp), programmed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, conditionsOf(tc.kind, tc.valid)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
