package coverage

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

func TestInterfaceConditions(t *testing.T) {
	miss := func(ad, i string) v1beta1.MissingInterface {
		return v1beta1.MissingInterface{L2Advertisement: ad, Interface: i}
	}
	ads := map[string][]string{"typo": {"eth0", "eht0"}, "any": nil, "vlan": {"vlan7"}, "quiet": {"eth9"}}
	reports := []InterfaceReport{
		{Node: "n1", Interfaces: []string{"eth0"}, Missing: []v1beta1.MissingInterface{miss("typo", "eht0"), miss("vlan", "vlan7")}},
		{Node: "n2", Missing: []v1beta1.MissingInterface{miss("typo", "eht0")}},
		{Node: "n3", Interfaces: []string{"vlan7"}},
	}
	got := InterfaceConditions(ads, reports)
	if _, ok := got["any"]; ok {
		t.Errorf("an advertisement naming no interface got %+v", got["any"])
	}
	for _, tc := range []struct {
		ad     string
		status metav1.ConditionStatus
		reason string
		msg    string
	}{
		{"typo", metav1.ConditionFalse, v1beta1.ReasonInterfaceMissing, `interface "eht0" (missing on n1, n2)`},
		{"vlan", metav1.ConditionTrue, v1beta1.ReasonInterfacesFound, `"vlan7" (missing on n1, present on n3)`},
		{"quiet", metav1.ConditionTrue, v1beta1.ReasonInterfacesFound, "no elected node reported"},
	} {
		v, ok := got[tc.ad]
		if !ok || v.Status != tc.status || v.Reason != tc.reason || !strings.Contains(v.Message, tc.msg) {
			t.Errorf("%s: %+v, want %s %s containing %q", tc.ad, v, tc.status, tc.reason, tc.msg)
		}
	}
	// eth0 of "typo" is fine: only eht0 is named in its message.
	if strings.Contains(got["typo"].Message, `"eth0"`) {
		t.Errorf("typo: %q names eth0", got["typo"].Message)
	}
}
