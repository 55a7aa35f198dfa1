package report

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
)

// typoCluster: n4 is elected for ip4; advertisement "v4" names eth1 and the misspelled
// "eht0"; n4 has eth0 and eth1. With any=true a second advertisement "any" names no
// interface for the same pool.
func typoCluster(any bool, ifaces ...string) *observetest.Cluster {
	c := observetest.New().Service("default", "web", "n1", ip4)
	c.Lists.L2Advertisements[0].Spec.Interfaces = ifaces
	if any {
		ad := c.Lists.L2Advertisements[0].DeepCopy()
		ad.Name, ad.UID, ad.Spec.Interfaces = "any", "uid-ad-any", nil
		c.Lists.L2Advertisements = append(c.Lists.L2Advertisements, *ad)
	}
	c.Interfaces = map[string]bool{"eth0": true, "eth1": true}
	return c
}

// The Events of one plan agree with each other and with what is decided: the
// L2InterfaceMissing note said "announced on its other interfaces" even when there were
// none, in the same second as L2NoUsableInterface said "not announced".
func TestEventsInterfaceMissingFollowsDecision(t *testing.T) {
	all := []string{"n1", "n2", "n3", "n4"}
	tests := []struct {
		name    string
		c       *observetest.Cluster
		service []string // the Service's Events, in order
	}{{
		name:    "other named interfaces exist",
		c:       typoCluster(false, "eth1", "eht0"),
		service: []string{`default/web L2InterfaceMissing: L2Advertisement v4 names interface "eht0", which node n4 does not have; 203.0.113.10 is announced on eth1`},
	}, {
		name:    "another advertisement names none: the route interface",
		c:       typoCluster(true, "eht0"),
		service: []string{`default/web L2InterfaceMissing: L2Advertisement v4 names interface "eht0", which node n4 does not have; 203.0.113.10 is announced on the interface holding the route to it (another L2Advertisement names no interface)`},
	}, {
		name: "no interface left: not announced, and both Events say so",
		c:    typoCluster(false, "eht0"),
		service: []string{
			`default/web L2InterfaceMissing: L2Advertisement v4 names interface "eht0", which node n4 does not have; 203.0.113.10 is not announced by node n4: none of the interfaces named for it exists there`,
			`default/web L2NoUsableInterface: node n4 is elected for 203.0.113.10 but has none of the interfaces its L2Advertisements name; not announced`,
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap, plan, _, applied := decide(tc.c, "n4", all...)
			var ad, svc []string
			for _, n := range notes(NewEvents().Diff(snap, plan, applied)) {
				switch {
				case strings.Contains(n, EventAnnouncerChanged):
					// Not about interfaces (decide fakes layer 2 answering on eth0).
				case strings.HasPrefix(n, "ad/"):
					ad = append(ad, n)
				default:
					svc = append(svc, n)
				}
			}
			if d := cmp.Diff(tc.service, svc); d != "" {
				t.Errorf("Service Events (-want +got):\n%s", d)
			}
			wantAd := []string{`ad/v4 L2InterfaceMissing: L2Advertisement v4 names interface "eht0", which node n4 does not have; the node answers on its other interfaces only`}
			if d := cmp.Diff(wantAd, ad); d != "" {
				t.Errorf("advertisement Events (-want +got):\n%s", d)
			}
		})
	}
}

// When the advertisement without interfaces goes away, the IP stops being announced: a
// new L2InterfaceMissing Event says so (with L2NoUsableInterface), instead of silence.
func TestEventsInterfaceMissingWhenTheOtherAdvertisementGoes(t *testing.T) {
	all := []string{"n1", "n2", "n3", "n4"}
	e := NewEvents()
	c := typoCluster(true, "eht0")
	snap, plan, _, applied := decide(c, "n4", all...)
	if got := notes(e.Diff(snap, plan, applied)); len(got) != 3 { // announcer changed, ad, Service
		t.Fatalf("first: %q", got)
	}
	c.Lists.L2Advertisements = c.Lists.L2Advertisements[:1]
	snap, plan, _, applied = decide(c, "n4", all...)
	got := notes(e.Diff(snap, plan, applied))
	var reasons []string
	for _, n := range got {
		reasons = append(reasons, strings.SplitN(n, ":", 2)[0])
		if strings.Contains(n, "is announced") {
			t.Errorf("Event claims an announcement: %q", n)
		}
	}
	// n4 stays elected, so there is no L2AnnouncerChanged: these two are all that tell it.
	want := []string{"default/web L2InterfaceMissing", "default/web L2NoUsableInterface"}
	if !slices.Equal(reasons, want) {
		t.Errorf("after the other advertisement went: %q, want reasons %q", got, want)
	}
}

// The elected node lists the interfaces it lacks in its ServiceL2Status, whether the IP
// is announced elsewhere (route interface) or not at all.
func TestStatusMissingInterfaces(t *testing.T) {
	all := []string{"n1", "n2", "n3", "n4"}
	want := []v1beta1.MissingInterface{{L2Advertisement: "v4", Interface: "eht0"}}
	for _, tc := range []struct {
		name      string
		c         *observetest.Cluster
		announced metav1.ConditionStatus
		ips       []string
	}{
		{"route interface", typoCluster(true, "eht0"), metav1.ConditionTrue, []string{ip4.String()}},
		{"other interface", typoCluster(false, "eth1", "eht0"), metav1.ConditionTrue, []string{ip4.String()}},
		{"none left", typoCluster(false, "eht0"), metav1.ConditionFalse, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := diff(NewStatuses(), tc.c, "n4", all...)
			if len(p.Create) != 1 {
				t.Fatalf("plan %+v", p)
			}
			st := p.Create[0].Status
			if d := cmp.Diff(want, st.MissingInterfaces); d != "" {
				t.Errorf("missingInterfaces (-want +got):\n%s", d)
			}
			if !slices.Equal(st.IPs, tc.ips) {
				t.Errorf("ips %v, want %v", st.IPs, tc.ips)
			}
			cond := meta.FindStatusCondition(st.Conditions, v1beta1.ConditionAnnounced)
			if cond == nil || cond.Status != tc.announced || !strings.Contains(cond.Message, "eht0") {
				t.Errorf("condition %+v", cond)
			}
		})
	}
	// Fixed: the next diff clears the list.
	c := typoCluster(true, "eht0")
	s := NewStatuses()
	st := diff(s, c, "n4", all...).Create[0]
	c.Lists.Statuses = append(c.Lists.Statuses, *st)
	c.Lists.L2Advertisements[0].Spec.Interfaces = []string{"eth0"}
	p := diff(s, c, "n4", all...)
	if len(p.Update) != 1 || len(p.Update[0].New.Status.MissingInterfaces) != 0 {
		t.Errorf("after the fix: %+v", p)
	}
}
