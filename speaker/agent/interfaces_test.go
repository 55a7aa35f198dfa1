package agent

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/report"
)

// Issue 12: an L2Advertisement naming an interface no node has, next to one for the same
// pool naming none. The IP is announced on the route interface, and yet every speaker
// reports the missing name (Event on the advertisement), the elected one in its
// ServiceL2Status and on the Service; when the other advertisement goes, the IP stops
// being announced and the Events say so instead of "announced on its other interfaces".
func TestAgentMisspelledInterfaceNextToAdvertisementWithout(t *testing.T) {
	f := setup(t) // L2Advertisement v4 covers pool v4 and names no interface
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.create(t, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "v4-typo"},
		Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"v4"}, Interfaces: []string{"eht0"}}})
	ann4, rec4 := f.startAgent(t, ctx, "n4", map[string]bool{"eth0": true})
	_, rec3 := f.startAgent(t, ctx, "n3", map[string]bool{"eth0": true})
	f.service(t, "web", "203.0.113.10") // n4 is elected

	waitFor(t, "n4 announces on the route interface", func() (bool, string) {
		return slices.Equal(ann4.ips(), []string{"203.0.113.10"}), fmt.Sprint(ann4.ips())
	})
	for node, rec := range map[string]*recorder{"n4": rec4, "n3": rec3} {
		waitFor(t, node+"'s Event on the advertisement", func() (bool, string) {
			return rec.find("Warning /v4-typo", report.EventInterfaceMissing, `interface "eht0", which node `+node+` does not have`), rec.all()
		})
	}
	waitFor(t, "n4's Event on the Service", func() (bool, string) {
		return rec4.find("Warning default/web", report.EventInterfaceMissing,
			"203.0.113.10 is announced on the interface holding the route to it"), rec4.all()
	})
	wantMissing := []v1beta1.MissingInterface{{L2Advertisement: "v4-typo", Interface: "eht0"}}
	waitFor(t, "status lists the missing interface, Announced True", func() (bool, string) {
		s, ok := f.statuses(t)["web@n4"]
		c := meta.FindStatusCondition(s.Conditions, v1beta1.ConditionAnnounced)
		return ok && slices.Equal(s.MissingInterfaces, wantMissing) && c != nil && c.Status == metav1.ConditionTrue &&
			slices.Equal(s.IPs, []string{"203.0.113.10"}), fmt.Sprintf("%+v", s)
	})
	if rec3.find("default/web", report.EventInterfaceMissing) {
		t.Errorf("n3, not elected, told the Service: %s", rec3.all())
	}

	// The advertisement without interfaces goes: nothing is left to answer on.
	if err := f.c.Delete(ctx, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "v4"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n4 withdraws", func() (bool, string) { return len(ann4.ips()) == 0, fmt.Sprint(ann4.ips()) })
	waitFor(t, "the Events say it is not announced", func() (bool, string) {
		return rec4.find("Warning default/web", report.EventInterfaceMissing, "203.0.113.10 is not announced by node n4") &&
			rec4.find("Warning default/web", report.EventNoInterface, "not announced"), rec4.all()
	})
	waitFor(t, "status Announced=False/InterfaceMissing, still listing the interface", func() (bool, string) {
		s, ok := f.statuses(t)["web@n4"]
		c := meta.FindStatusCondition(s.Conditions, v1beta1.ConditionAnnounced)
		return ok && slices.Equal(s.MissingInterfaces, wantMissing) && len(s.IPs) == 0 && c != nil &&
			c.Status == metav1.ConditionFalse && c.Reason == v1beta1.ReasonInterfaceMissing, fmt.Sprintf("%+v", s)
	})
}
