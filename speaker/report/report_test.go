package report

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/observe"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
)

var (
	ip4 = observetest.IP4 // ranks n4 n3 n1 n2
	ip6 = observetest.IP6 // ranks n4 n2 n1 n3
	now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

// decide runs the election for self with the given live members and returns what the
// status diff needs; layer 2 is taken to serve every desired IP on eth0.
func decide(c *observetest.Cluster, self string, alive ...string) (*observe.Snapshot, announce.Plan, map[string]bool, Applied) {
	snap := c.Snapshot(self, observetest.View{Alive: alive})
	plan := announce.Compute(snap.L2(snap.Alive))
	applied := Applied{Interfaces: map[netip.Addr][]string{}}
	for ip := range plan.Desired() {
		applied.Interfaces[ip] = []string{"eth0"}
	}
	return snap, plan, snap.Alive, applied
}

func diff(s *Statuses, c *observetest.Cluster, self string, alive ...string) StatusPlan {
	snap, plan, al, applied := decide(c, self, alive...)
	return s.Diff(now, snap, plan, al, plan.Desired(), applied)
}

func names(sts []*v1beta1.ServiceL2Status) []string {
	var out []string
	for _, st := range sts {
		out = append(out, st.Namespace+"/"+st.Name)
	}
	return out
}

func TestStatusOwnObjects(t *testing.T) {
	c := observetest.New().Service("default", "web", "n1", ip4)
	s := NewStatuses()
	p := diff(s, c, "n4", "n1", "n2", "n3", "n4")
	if len(p.Create) != 1 || len(p.Update)+len(p.Delete)+len(p.Collect) != 0 {
		t.Fatalf("plan %+v", p)
	}
	st := p.Create[0]
	if st.Name != StatusName("web", "n4") || st.Labels[v1beta1.LabelStatusNode] != "n4" || st.Labels[v1beta1.LabelStatusService] != "web" ||
		len(st.OwnerReferences) != 1 || st.OwnerReferences[0].UID != "uid-default-web" {
		t.Errorf("object %+v", st.ObjectMeta)
	}
	if !slices.Equal(st.Status.IPs, []string{ip4.String()}) || !slices.Equal(st.Status.Interfaces, []string{"eth0"}) ||
		!meta.IsStatusConditionTrue(st.Status.Conditions, v1beta1.ConditionAnnounced) {
		t.Errorf("status %+v", st.Status)
	}
	// Published as decided: nothing to write.
	c.Lists.Statuses = append(c.Lists.Statuses, *st)
	if p := diff(s, c, "n4", "n1", "n2", "n3", "n4"); !p.Empty() {
		t.Errorf("second diff %+v", p)
	}
	// A failure on the IP turns the condition False.
	snap, plan, al, applied := decide(c, "n4", "n1", "n2", "n3", "n4")
	applied.Errors = map[netip.Addr][]string{ip4: {"eth0: socket: permission denied"}}
	p = s.Diff(now, snap, plan, al, plan.Desired(), applied)
	if len(p.Update) != 1 {
		t.Fatalf("plan %+v", p)
	}
	cond := meta.FindStatusCondition(p.Update[0].New.Status.Conditions, v1beta1.ConditionAnnounced)
	if cond.Status != "False" || cond.Reason != v1beta1.ReasonAnnounceFailed || !strings.Contains(cond.Message, "permission denied") {
		t.Errorf("condition %+v", cond)
	}
	// n4 is no longer elected (it sees n3 only... and n3 ranks below it, so make n4
	// lose its endpoint instead): its object goes.
	c.Lists.EndpointSlices = nil
	if p := diff(s, c, "n4", "n1", "n2", "n3", "n4"); !slices.Equal(names(p.Delete), []string{"default/" + StatusName("web", "n4")}) {
		t.Errorf("delete %v", names(p.Delete))
	}
}

// A dual-stack Service's IPs failed over to two nodes (n3 took the IPv4, n2 the IPv6):
// the dead node's status is collected once both are announced again, by this node or
// by another live node. Requiring one node to hold all of them left such objects
// forever (found by repeating the e2e moves).
func TestStatusDeadNodeDualStackSplitAcrossNodes(t *testing.T) {
	c := observetest.New().AdvertiseV6().Service("default", "web", "n1", ip4, ip6).
		Publish("n4", "default", "web", ip4, ip6)
	s := NewStatuses()
	alive := []string{"n1", "n2", "n3"}
	if p := diff(s, c, "n3", alive...); len(p.Collect) != 0 {
		t.Fatalf("collected while the IPv6 is announced by nobody: %v", names(p.Collect))
	}
	c.Publish("n2", "default", "web", ip6)
	p := diff(s, c, "n3", alive...)
	if !slices.Equal(names(p.Collect), []string{"default/web-n4"}) {
		t.Fatalf("collect %v", names(p.Collect))
	}
	// Collected once: the same object in a lagging cache is not deleted again.
	if p := diff(s, c, "n3", alive...); len(p.Collect) != 0 {
		t.Errorf("collected twice: %v", names(p.Collect))
	}
}

// A Service recreated under the same name: n4 died, its status was collected; n4 came
// back without an object of its own (it yielded nothing yet), then died again with a
// fresh object. That object must be collected too: the memory of the first collection
// must end when n4 is alive, not when it next has an object.
func TestStatusDeadNodeCollectedAgainAfterItReturned(t *testing.T) {
	c := observetest.New().Service("default", "web", "n1", ip4).Publish("n4", "default", "web", ip4)
	s := NewStatuses()
	dead := []string{"n1", "n2", "n3"}
	if p := diff(s, c, "n3", dead...); !slices.Equal(names(p.Collect), []string{"default/web-n4"}) {
		t.Fatalf("first death: collect %v", names(p.Collect))
	}
	c.Unpublish("n4", "default", "web")
	diff(s, c, "n3", "n1", "n2", "n3", "n4")
	c.Publish("n4", "default", "web", ip4)
	if p := diff(s, c, "n3", dead...); !slices.Equal(names(p.Collect), []string{"default/web-n4"}) {
		t.Fatalf("second death: collect %v", names(p.Collect))
	}
}

// A failed collection is retried.
func TestStatusCollectFailedRetries(t *testing.T) {
	c := observetest.New().Service("default", "web", "n1", ip4).Publish("n4", "default", "web", ip4)
	s := NewStatuses()
	p := diff(s, c, "n3", "n1", "n2", "n3")
	if len(p.Collect) != 1 {
		t.Fatalf("collect %v", names(p.Collect))
	}
	s.CollectFailed(p.Collect[0])
	if p := diff(s, c, "n3", "n1", "n2", "n3"); len(p.Collect) != 1 {
		t.Errorf("not retried: %v", names(p.Collect))
	}
}

// A Service in a terminating namespace gets no new status (the API refuses new objects
// there; the speaker logged errors and retried every second while namespaces went away);
// the others do.
func TestStatusSkipsTerminatingNamespace(t *testing.T) {
	c := observetest.New().Service("gone", "old", "n1", ip4).Service("default", "web", "n1", ip4).Terminating("gone")
	p := diff(NewStatuses(), c, "n4", "n1", "n2", "n3", "n4")
	if got := names(p.Create); !slices.Equal(got, []string{"default/" + StatusName("web", "n4")}) {
		t.Errorf("create %v", got)
	}
}

// A withheld IP (yielded in a conflict) is not reported as announced.
func TestStatusWithheldIPNotListed(t *testing.T) {
	c := observetest.New().Service("default", "web", "n1", ip4)
	snap, plan, al, applied := decide(c, "n4", "n1", "n2", "n3", "n4")
	p := NewStatuses().Diff(now, snap, plan, al, map[netip.Addr][]string{}, applied)
	if !p.Empty() {
		t.Errorf("plan for a withheld IP: %+v", p)
	}
}

func notes(evs []Event) []string {
	var out []string
	for _, e := range evs {
		who := e.Service.String()
		if e.Advertisement != "" {
			who = "ad/" + e.Advertisement
		}
		out = append(out, who+" "+e.Reason+": "+e.Note)
	}
	return out
}

func TestEventsAnnouncerChanges(t *testing.T) {
	c := observetest.New().Service("default", "web", "n1", ip4).Publish("n4", "default", "web", ip4)
	e := NewEvents()
	// n3 starts while n4 is dead: "previously" comes from n4's published status.
	snap, plan, _, applied := decide(c, "n3", "n1", "n2", "n3")
	got := notes(e.Diff(snap, plan, applied))
	want := []string{"default/web L2AnnouncerChanged: node n3 announces 203.0.113.10 on eth0 (previously: n4)"}
	if !slices.Equal(got, want) {
		t.Errorf("start: %q, want %q", got, want)
	}
	if got := e.Diff(snap, plan, applied); len(got) != 0 {
		t.Errorf("unchanged: %v", notes(got))
	}
	// n4 is back: n3 withdraws and names it.
	snap, plan, _, applied = decide(c, "n3", "n1", "n2", "n3", "n4")
	want = []string{"default/web L2AnnouncerChanged: node n3 stopped announcing 203.0.113.10; now: n4"}
	if got := notes(e.Diff(snap, plan, applied)); !slices.Equal(got, want) {
		t.Errorf("withdraw: %q, want %q", got, want)
	}
}

func TestEventsProblemsOnce(t *testing.T) {
	c := observetest.New().Service("default", "web", "n1", ip4)
	c.Lists.L2Advertisements[0].Spec.Interfaces = []string{"eth7"}
	c.Interfaces = map[string]bool{"eth0": true}
	e := NewEvents()
	snap, plan, _, applied := decide(c, "n4", "n1", "n2", "n3", "n4")
	got := notes(e.Diff(snap, plan, applied))
	if len(got) != 3 || !strings.HasPrefix(got[0], "ad/v4 L2InterfaceMissing") || !strings.Contains(got[2], EventNoInterface) {
		t.Errorf("first: %q", got)
	}
	if got := e.Diff(snap, plan, applied); len(got) != 0 {
		t.Errorf("repeated: %v", notes(got))
	}
}
