package agent

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/internal/testenv"
	"github.com/loadstone-lb/loadstone/internal/testwait"
	"github.com/loadstone-lb/loadstone/speaker/layer2"
	"github.com/loadstone-lb/loadstone/speaker/members"
	"github.com/loadstone-lb/loadstone/speaker/report"
)

// fakeAnnouncer records the desired state; it "serves" every IP on eth0 unless told the
// interface list.
type fakeAnnouncer struct {
	mu          sync.Mutex
	desired     layer2.Desired
	reannounced int
	// calls lists each Reannounce call's IPs ("all" for a call without any).
	calls []string
}

func (f *fakeAnnouncer) Apply(d layer2.Desired) layer2.Applied {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.desired = d
	res := layer2.Applied{Interfaces: map[netip.Addr][]string{}}
	for ip, ifs := range d {
		if len(ifs) == 0 {
			ifs = []string{"eth0"}
		}
		res.Interfaces[ip] = ifs
	}
	return res
}

func (f *fakeAnnouncer) Reannounce(ips ...netip.Addr) {
	f.mu.Lock()
	f.reannounced++
	call := "all"
	if len(ips) > 0 {
		call = fmt.Sprint(ips)
	}
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeAnnouncer) ips() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for ip := range f.desired {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out
}

// view holds each observer's membership view; tests edit it.
type view struct {
	mu      sync.Mutex
	alive   map[string]map[string]bool // observer -> alive set
	all     map[string]members.Member  // member metadata, for MAC owners
	changes []chan struct{}
}

type viewOf struct {
	v    *view
	self string
	c    chan struct{}
}

func (v *view) member(self string) *viewOf {
	c := make(chan struct{}, 1)
	v.mu.Lock()
	v.changes = append(v.changes, c)
	v.mu.Unlock()
	return &viewOf{v: v, self: self, c: c}
}

// set sets what the observers see (every observer sees itself too).
func (v *view) set(observers []string, names ...string) {
	v.mu.Lock()
	if v.alive == nil {
		v.alive = map[string]map[string]bool{}
	}
	for _, o := range observers {
		v.alive[o] = map[string]bool{o: true}
		for _, n := range names {
			v.alive[o][n] = true
		}
	}
	for _, c := range v.changes {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	v.mu.Unlock()
}

// n4MAC publishes n4's MAC in the member metadata (the tie-break finds a speaker by its
// MAC) with the given member state, and returns the MAC.
func (v *view) n4MAC(st members.State) net.HardwareAddr {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x04}
	v.mu.Lock()
	v.all = map[string]members.Member{"n4": {Name: "n4", MACs: []net.HardwareAddr{mac}, State: st}}
	v.mu.Unlock()
	return mac
}

var everyone = []string{"n1", "n2", "n3", "n4"}

func (m *viewOf) Alive() map[string]bool {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	return maps.Clone(m.v.alive[m.self])
}
func (m *viewOf) Degraded() bool { return false }
func (m *viewOf) All() map[string]members.Member {
	m.v.mu.Lock()
	defer m.v.mu.Unlock()
	return maps.Clone(m.v.all)
}
func (m *viewOf) Changes() <-chan struct{} { return m.c }
func (m *viewOf) Arrivals() uint64         { return 0 }

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Eventf(regarding, _ runtime.Object, typ, reason, action, note string, args ...any) {
	o := regarding.(client.Object)
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf("%s %s/%s %s %s: %s", typ, o.GetNamespace(), o.GetName(), reason, action, fmt.Sprintf(note, args...)))
	r.mu.Unlock()
}

func (r *recorder) find(sub ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
next:
	for _, e := range r.events {
		for _, s := range sub {
			if !strings.Contains(e, s) {
				continue next
			}
		}
		return true
	}
	return false
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, "\n")
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testwait.For(t, what, 20*time.Second, 25*time.Millisecond, cond)
}

// settle returns once a sync has started and finished after the call: two syncs, each
// asked for after the previous one was seen to finish (the first may have been under way
// already). With a fake clock, call it after stepping the clock.
func settle(t *testing.T, a *Agent) {
	t.Helper()
	for range 2 {
		n := syncCount(t, a)
		a.Trigger()
		waitFor(t, "a sync", func() (bool, string) { return syncCount(t, a) > n, "" })
	}
}

func syncCount(t *testing.T, a *Agent) uint64 {
	t.Helper()
	var n uint64
	for _, res := range []string{"ok", "error"} {
		var m dto.Metric
		if err := a.m.syncs.WithLabelValues(res).(prometheus.Metric).Write(&m); err != nil {
			t.Fatal(err)
		}
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

type fixture struct {
	env *testenv.Env
	c   client.Client
	v   *view
	// dataplane, when set, is the Dataplane of the agents started next.
	dataplane Announcer
}

func (f *fixture) startAgent(t *testing.T, ctx context.Context, node string, ifaces map[string]bool) (*fakeAnnouncer, *recorder) {
	ann, rec, _ := f.startAgentWith(t, ctx, node, ifaces, nil)
	return ann, rec
}

// startAgentWith starts an agent; with a fake clock, its waits (hold-down, reclaim delay,
// rate limits) advance only when the test steps the clock, and syncs are not coalesced.
func (f *fixture) startAgentWith(t *testing.T, ctx context.Context, node string, ifaces map[string]bool, clk *clocktesting.FakeClock) (*fakeAnnouncer, *recorder, *Agent) {
	t.Helper()
	ca, err := cache.New(f.env.Config, cache.Options{Scheme: f.env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// The cache and the agent run until the test cancels ctx (every caller defers cancel,
	// which runs before t.Cleanup); the cleanup waits for both and reports their errors.
	cacheErr, agentErr := make(chan error, 1), make(chan error, 1)
	go func() { cacheErr <- ca.Start(ctx) }()
	ann, rec := &fakeAnnouncer{}, &recorder{}
	cfg := Config{NodeName: node, Cache: ca, Client: f.c, Recorder: rec, Announcers: []Announcer{Layer2{Backend: ann}},
		Interfaces: func() (map[string]bool, error) { return ifaces, nil }, Dataplane: f.dataplane}
	if clk != nil {
		cfg.Clock, cfg.MinSyncInterval = clk, -1
	}
	a := New(cfg)
	a.UseMembers(f.v.member(node))
	go func() { agentErr <- a.Start(ctx) }()
	t.Cleanup(func() {
		if err := <-agentErr; err != nil {
			t.Errorf("agent %s: Start: %v", node, err)
		}
		if err := <-cacheErr; err != nil {
			t.Errorf("agent %s: cache Start: %v", node, err)
		}
	})
	return ann, rec, a
}

func (f *fixture) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := f.c.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func setup(t *testing.T) *fixture {
	env := testenv.Start(t, testenv.Options{})
	f := &fixture{env: env, c: env.Client, v: &view{}}
	f.v.set(everyone, everyone...)
	ctx := context.Background()
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}
		f.create(t, node)
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if err := f.c.Status().Update(ctx, node); err != nil {
			t.Fatal(err)
		}
	}
	// The pools are in mode off: these agents run without a dataplane (unless a test sets
	// one), and IPs in the default mode pods would be withheld until one carries them.
	f.create(t,
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "v4"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}, DataplaneMode: v1beta1.DataplaneModeOff}},
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "v6"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"2001:db8:100::/64"}, DataplaneMode: v1beta1.DataplaneModeOff}},
		&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "v4"}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"v4"}}},
	)
	return f
}

// service creates a LoadBalancer Service with the given LB IP and a ready endpoint on n1.
func (f *fixture) service(t *testing.T, name string, ips ...string) {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	if len(ips) == 2 {
		svc.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyPreferDualStack)
	}
	f.create(t, svc)
	for _, ip := range ips {
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	if err := f.c.Status().Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	f.create(t, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.18.1.5"}, NodeName: ptr.To("n1"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}},
	})
}

// claim writes a ServiceL2Status for Service default/web as node would: name, labels,
// owner reference and status listing ips.
func (f *fixture) claim(t *testing.T, node, name string, ips ...string) *v1beta1.ServiceL2Status {
	t.Helper()
	ctx := context.Background()
	var svc corev1.Service
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, &svc); err != nil {
		t.Fatal(err)
	}
	st := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
		Labels:          map[string]string{v1beta1.LabelStatusNode: node, v1beta1.LabelStatusService: "web"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: svc.UID}}}}
	f.create(t, st)
	st.Status = v1beta1.ServiceL2StatusStatus{Node: node, ServiceName: "web", IPs: ips, Interfaces: []string{"eth0"}}
	if err := f.c.Status().Update(ctx, st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) statuses(t *testing.T) map[string]v1beta1.ServiceL2StatusStatus {
	var l v1beta1.ServiceL2StatusList
	if err := f.c.List(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]v1beta1.ServiceL2StatusStatus{}
	for _, s := range l.Items {
		out[s.Status.ServiceName+"@"+s.Status.Node] = s.Status
	}
	return out
}

// For 203.0.113.10 the election order of n1..n4 is n4 n3 n1 n2 (speaker/election tests).
func TestAgentAnnouncesStatusAndFailsOver(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ann4, rec4 := f.startAgent(t, ctx, "n4", nil)
	ann3, rec3, a3 := f.startAgentWith(t, ctx, "n3", nil, nil)
	f.service(t, "web", "203.0.113.10")

	waitFor(t, "n4 announces", func() (bool, string) {
		return slices.Equal(ann4.ips(), []string{"203.0.113.10"}), fmt.Sprint(ann4.ips())
	})
	if len(ann3.ips()) != 0 {
		t.Errorf("n3 announces %v too", ann3.ips())
	}
	waitFor(t, "status of n4", func() (bool, string) {
		s, ok := f.statuses(t)["web@n4"]
		return ok && slices.Equal(s.IPs, []string{"203.0.113.10"}) && slices.Equal(s.Interfaces, []string{"eth0"}) &&
			meta.IsStatusConditionTrue(s.Conditions, v1beta1.ConditionAnnounced), fmt.Sprintf("%+v", f.statuses(t))
	})
	waitFor(t, "announce event by n4", func() (bool, string) {
		return rec4.find("default/web", report.EventAnnouncerChanged, "node n4 announces 203.0.113.10"), rec4.all()
	})

	// n3 names its predecessor from its own last election or, if it never ran one with
	// the IP (its cache may lag behind n4's), from n4's status; wait until it has that.
	waitFor(t, "n4's status in n3's cache", func() (bool, string) {
		var l v1beta1.ServiceL2StatusList
		if err := a3.cfg.Cache.List(ctx, &l); err != nil {
			return false, err.Error()
		}
		for _, st := range l.Items {
			if st.Status.Node == "n4" && slices.Contains(st.Status.IPs, "203.0.113.10") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", l.Items)
	})

	// n4 is cut off: it sees nobody, the others do not see it. n3 takes over (n4, alone,
	// keeps announcing on its side of the partition); n3's status replaces n4's.
	f.v.set([]string{"n4"})
	f.v.set([]string{"n1", "n2", "n3"}, "n1", "n2", "n3")
	waitFor(t, "n3 announces", func() (bool, string) {
		return slices.Equal(ann3.ips(), []string{"203.0.113.10"}), fmt.Sprint(ann3.ips())
	})
	waitFor(t, "status of n3 with n4's deleted once", func() (bool, string) {
		s, ok := f.statuses(t)["web@n3"]
		return ok && slices.Equal(s.IPs, []string{"203.0.113.10"}), fmt.Sprintf("%+v", f.statuses(t))
	})
	waitFor(t, "event by n3", func() (bool, string) {
		return rec3.find(report.EventAnnouncerChanged, "node n3 announces 203.0.113.10", "previously: n4"), rec3.all()
	})

	// The partition heals: n3 withdraws; n4, which sees members come back, sends a
	// gratuitous round so the network returns to it.
	ann4.mu.Lock()
	before := ann4.reannounced
	ann4.mu.Unlock()
	f.v.set(everyone, everyone...)
	waitFor(t, "n3 withdraws", func() (bool, string) { return len(ann3.ips()) == 0, fmt.Sprint(ann3.ips()) })
	waitFor(t, "n4 reannounces", func() (bool, string) {
		ann4.mu.Lock()
		re := ann4.reannounced
		ann4.mu.Unlock()
		return re > before && slices.Equal(ann4.ips(), []string{"203.0.113.10"}), fmt.Sprint(re)
	})
	waitFor(t, "only n4's status remains", func() (bool, string) {
		st := f.statuses(t)
		_, ok := st["web@n4"]
		return ok && len(st) == 1, fmt.Sprintf("%+v", st)
	})

	// The Service loses its endpoints: nobody announces.
	if err := f.c.DeleteAllOf(ctx, &discoveryv1.EndpointSlice{}, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n4 withdraws without endpoints", func() (bool, string) { return len(ann4.ips()) == 0, fmt.Sprint(ann4.ips()) })
	waitFor(t, "status removed", func() (bool, string) { return len(f.statuses(t)) == 0, fmt.Sprintf("%+v", f.statuses(t)) })
}

func TestAgentMissingInterfaceKeepsOtherIPs(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.create(t, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "v6-eth7"},
		Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"v6"}, Interfaces: []string{"eth7"}}})
	ann, rec := f.startAgent(t, ctx, "n4", map[string]bool{"eth0": true})
	// 2001:db8:100::10 ranks n4 first too.
	f.service(t, "dual", "203.0.113.10", "2001:db8:100::10")

	waitFor(t, "IPv4 announced, IPv6 not", func() (bool, string) {
		return slices.Equal(ann.ips(), []string{"203.0.113.10"}), fmt.Sprint(ann.ips())
	})
	waitFor(t, "events on the advertisement and the Service", func() (bool, string) {
		return rec.find("/v6-eth7", report.EventInterfaceMissing, `"eth7"`) && rec.find("default/dual", report.EventNoInterface), rec.all()
	})
	waitFor(t, "status condition", func() (bool, string) {
		s, ok := f.statuses(t)["dual@n4"]
		c := meta.FindStatusCondition(s.Conditions, v1beta1.ConditionAnnounced)
		return ok && c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1beta1.ReasonInterfaceMissing &&
			slices.Equal(s.IPs, []string{"203.0.113.10"}), fmt.Sprintf("%+v", s)
	})
	var st v1beta1.ServiceL2Status
	err := f.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: report.StatusName("dual", "n4")}, &st)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.OwnerReferences) != 1 || st.OwnerReferences[0].Name != "dual" {
		t.Errorf("owner references %+v", st.OwnerReferences)
	}
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "nope"}, &st); !apierrors.IsNotFound(err) {
		t.Errorf("unexpected: %v", err)
	}
}

// Duplicate owners: a conflict with a speaker that ranks first makes this node yield (and
// take the IP back after the hold-down while that node is still not a member); a conflict
// with a MAC that is no speaker's is defended with a gratuitous round.
func TestAgentDuplicateOwnerTieBreak(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mac4 := f.v.n4MAC(members.StateDead)
	f.v.set([]string{"n3"}, "n1", "n2", "n3") // n3 does not see n4: n3 wins 203.0.113.10
	clk := clocktesting.NewFakeClock(time.Now())
	ann, rec, a := f.startAgentWith(t, ctx, "n3", nil, clk)
	f.service(t, "web", "203.0.113.10")
	ip := netip.MustParseAddr("203.0.113.10")
	waitFor(t, "n3 announces", func() (bool, string) { return slices.Equal(ann.ips(), []string{ip.String()}), fmt.Sprint(ann.ips()) })

	// A MAC nobody knows claims the IP: defend.
	ann.mu.Lock()
	before := ann.reannounced
	ann.mu.Unlock()
	a.OnConflict(layer2.Conflict{IP: ip, Interface: "eth0", Ours: net.HardwareAddr{2, 0, 0, 0, 0, 3}, Theirs: net.HardwareAddr{2, 0, 0, 0, 0, 0x99}})
	waitFor(t, "defended", func() (bool, string) {
		ann.mu.Lock()
		defer ann.mu.Unlock()
		return ann.reannounced > before, fmt.Sprint(ann.reannounced)
	})
	if !slices.Equal(ann.ips(), []string{ip.String()}) {
		t.Fatalf("IP dropped after defending: %v", ann.ips())
	}
	waitFor(t, "duplicate event", func() (bool, string) {
		return rec.find(report.EventDuplicateOwner, "02:00:00:00:00:99", "n3 defends"), rec.all()
	})

	// n4's MAC claims it (n4 ranks first for this IP): yield, then take it back after the
	// hold-down (10 s), since n3 still does not see n4. (The second conflict comes a second
	// after the first: decisions are rate-limited per IP.)
	clk.Step(time.Second)
	a.OnConflict(layer2.Conflict{IP: ip, Interface: "eth0", Ours: net.HardwareAddr{2, 0, 0, 0, 0, 3}, Theirs: mac4})
	waitFor(t, "yielded", func() (bool, string) { return len(ann.ips()) == 0, fmt.Sprint(ann.ips()) })
	waitFor(t, "yield event naming n4", func() (bool, string) {
		return rec.find(report.EventDuplicateOwner, "and by n4 (02:00:00:00:00:04)", "n3 yields"), rec.all()
	})
	clk.Step(9 * time.Second)
	settle(t, a)
	if len(ann.ips()) != 0 {
		t.Fatalf("took the IP back before the hold-down ended: %v", ann.ips())
	}
	clk.Step(time.Second)
	waitFor(t, "back after the hold-down", func() (bool, string) {
		return slices.Equal(ann.ips(), []string{ip.String()}), fmt.Sprint(ann.ips())
	})
}

// Another node's published claim on an IP we own goes away (that node yielded): the network
// may still point at it, so the owner re-announces that IP, even though its membership view
// never changed (a cut too short for it to see its peers die). A claim dropped by a node
// the owner does not see alive (news from across a partition) changes nothing, and so does
// a claim on an IP we do not own.
func TestAgentReclaimsIPAnotherNodeReleased(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.v.set([]string{"n4"}, "n2", "n3") // n4 does not see n1
	clk := clocktesting.NewFakeClock(time.Now())
	ann, _, a := f.startAgentWith(t, ctx, "n4", nil, clk)
	f.service(t, "web", "203.0.113.10")
	waitFor(t, "n4 announces", func() (bool, string) {
		return slices.Equal(ann.ips(), []string{"203.0.113.10"}), fmt.Sprint(ann.ips())
	})
	// seenByN4 waits until n4's cache holds st with its IPs (gone: until it is gone).
	seenByN4 := func(st *v1beta1.ServiceL2Status, gone bool) {
		waitFor(t, "n4's cache has "+st.Name+fmt.Sprintf(" (gone=%v)", gone), func() (bool, string) {
			var got v1beta1.ServiceL2Status
			err := a.cfg.Cache.Get(ctx, client.ObjectKeyFromObject(st), &got)
			if gone {
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			}
			return err == nil && len(got.Status.IPs) > 0, fmt.Sprint(err)
		})
	}
	calls := func() []string {
		ann.mu.Lock()
		defer ann.mu.Unlock()
		return slices.Clone(ann.calls)
	}
	other := f.claim(t, "n2", "web-n2-other", "203.0.113.99")
	ours := f.claim(t, "n2", "web-n2", "203.0.113.10")
	for _, st := range []*v1beta1.ServiceL2Status{other, ours} {
		seenByN4(st, false)
	}
	before := len(calls())
	// n1's claim: n4 itself deletes it (the status of a node it sees dead, for an IP it
	// announces), and that release does not count.
	seenByN4(f.claim(t, "n1", "web-n1", "203.0.113.10"), true)
	if err := f.c.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	seenByN4(other, true)
	// Nothing is due: a wrong reclaim would come ReclaimDelay (250 ms) after the sync.
	settle(t, a)
	clk.Step(time.Second)
	settle(t, a)
	if c := calls()[before:]; len(c) != 0 {
		t.Fatalf("re-announced after releases that do not count: %v", c)
	}
	if err := f.c.Delete(ctx, ours); err != nil {
		t.Fatal(err)
	}
	seenByN4(ours, true)
	settle(t, a)
	if c := calls()[before:]; len(c) != 0 {
		t.Fatalf("re-announced before the reclaim delay: %v", c)
	}
	clk.Step(250 * time.Millisecond)
	waitFor(t, "n4 re-announces 203.0.113.10 alone", func() (bool, string) {
		c := calls()[before:]
		return slices.Equal(c, []string{"[203.0.113.10]"}), fmt.Sprint(c)
	})
	if !slices.Equal(ann.ips(), []string{"203.0.113.10"}) {
		t.Errorf("n4 announces %v", ann.ips())
	}
}

// A node that yields in the tie-break but keeps the IP after all (the winner by rank is
// alive but not eligible in its view: here excluded from load balancers) re-announces it:
// the announcer may have stopped its burst already, and the network must not stay on the
// other node. A second conflict within the decision rate limit is re-asserted too.
func TestAgentReassertsIPItKeepsAfterAConflict(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mac4 := f.v.n4MAC(members.StateAlive)
	var n4 corev1.Node
	if err := f.c.Get(ctx, client.ObjectKey{Name: "n4"}, &n4); err != nil {
		t.Fatal(err)
	}
	n4.Labels = map[string]string{v1beta1.LabelExcludeFromLB: ""}
	if err := f.c.Update(ctx, &n4); err != nil {
		t.Fatal(err)
	}
	// n4 ranks first for 203.0.113.10 but is excluded, so n3 is elected.
	ann, rec, a := f.startAgentWith(t, ctx, "n3", nil, nil)
	f.service(t, "web", "203.0.113.10")
	ip := netip.MustParseAddr("203.0.113.10")
	waitFor(t, "n3 announces", func() (bool, string) { return slices.Equal(ann.ips(), []string{ip.String()}), fmt.Sprint(ann.ips()) })
	if !a.YieldsTo(ip, mac4) {
		t.Fatal("YieldsTo: n3 should yield to n4 by rank")
	}
	calls := func() []string {
		ann.mu.Lock()
		defer ann.mu.Unlock()
		return slices.Clone(ann.calls)
	}
	before := len(calls())
	for i := range 2 {
		a.OnConflict(layer2.Conflict{IP: ip, Interface: "eth0", Ours: net.HardwareAddr{2, 0, 0, 0, 0, 3}, Theirs: mac4})
		waitFor(t, fmt.Sprintf("re-announced after conflict %d", i+1), func() (bool, string) {
			n := 0
			for _, c := range calls()[before:] {
				if c == "[203.0.113.10]" {
					n++
				}
			}
			return n >= i+1, fmt.Sprint(calls()[before:])
		})
	}
	if !slices.Equal(ann.ips(), []string{ip.String()}) {
		t.Errorf("n3 dropped the IP: %v", ann.ips())
	}
	waitFor(t, "yield event", func() (bool, string) { return rec.find(report.EventDuplicateOwner, "n3 yields"), rec.all() })
}

// The status of a dead node is collected once per death: after the node came back (even
// without an object of its own meanwhile) and died again, its new object is collected too.
func TestAgentCollectsDeadNodesStatusAgainAfterItReturned(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.v.set([]string{"n3"}, "n1", "n2") // n3 does not see n4
	ann, _ := f.startAgent(t, ctx, "n3", nil)
	f.service(t, "web", "203.0.113.10")
	gone := func(st *v1beta1.ServiceL2Status) {
		waitFor(t, st.Name+" collected by n3", func() (bool, string) {
			err := f.c.Get(ctx, client.ObjectKeyFromObject(st), &v1beta1.ServiceL2Status{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	}
	gone(f.claim(t, "n4", "web-n4-a", "203.0.113.10"))
	// n4 comes back (n3 sees it, and yields the IP to it), without an object of its own.
	f.v.set([]string{"n3"}, "n1", "n2", "n4")
	waitFor(t, "n3 yields to n4", func() (bool, string) {
		_, ok := f.statuses(t)["web@n3"]
		return !ok && len(ann.ips()) == 0, fmt.Sprintf("%+v %v", f.statuses(t), ann.ips())
	})
	// n4 dies again, and an object of n4 for the Service shows up (as one written just
	// before the death would): it is collected again.
	f.v.set([]string{"n3"}, "n1", "n2")
	waitFor(t, "n3 announces again", func() (bool, string) {
		return slices.Equal(ann.ips(), []string{"203.0.113.10"}), fmt.Sprint(ann.ips())
	})
	gone(f.claim(t, "n4", "web-n4-b", "203.0.113.10"))
}

// A dead node's status for a dual-stack Service is collected once each of its IPs is
// announced again, even when the two went to two different nodes.
func TestAgentCollectsDeadNodesStatusSplitAcrossNodes(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.v.set([]string{"n3"}, "n1", "n2") // n3 does not see n4
	ann, _, a := f.startAgentWith(t, ctx, "n3", nil, nil)
	// Only the v4 pool has an L2Advertisement: n3 announces 203.0.113.10, not the IPv6.
	f.service(t, "web", "203.0.113.10", "2001:db8:100::10")
	waitFor(t, "n3 announces the IPv4", func() (bool, string) {
		return slices.Equal(ann.ips(), []string{"203.0.113.10"}), fmt.Sprint(ann.ips())
	})
	dead := f.claim(t, "n4", "web-n4", "203.0.113.10", "2001:db8:100::10")
	waitFor(t, "n3's cache has n4's status", func() (bool, string) {
		var got v1beta1.ServiceL2Status
		err := a.cfg.Cache.Get(ctx, client.ObjectKeyFromObject(dead), &got)
		return err == nil && len(got.Status.IPs) == 2, fmt.Sprint(err)
	})
	// Nobody announces the IPv6 yet: n4's status stays.
	settle(t, a)
	if err := f.c.Get(ctx, client.ObjectKeyFromObject(dead), &v1beta1.ServiceL2Status{}); err != nil {
		t.Fatalf("n4's status went while its IPv6 was announced by nobody: %v", err)
	}
	// n2, alive, publishes the IPv6: now both IPs are announced again.
	f.claim(t, "n2", "web-n2", "2001:db8:100::10")
	waitFor(t, "n4's status collected", func() (bool, string) {
		err := f.c.Get(ctx, client.ObjectKeyFromObject(dead), &v1beta1.ServiceL2Status{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// A Service in a terminating namespace gets no status object (the API refuses new objects
// there) and does not make the sync fail; the other Services' statuses are written.
func TestAgentSkipsStatusInTerminatingNamespace(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gone"}}
	f.create(t, ns)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "gone", Name: "old"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	f.create(t, svc)
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.10"}}
	if err := f.c.Status().Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	f.create(t, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "gone", Name: "old-1", Labels: map[string]string{discoveryv1.LabelServiceName: "old"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.18.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	})
	// Without kube-controller-manager the namespace stays Terminating.
	if err := f.c.Delete(ctx, ns); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "namespace terminating", func() (bool, string) {
		var got corev1.Namespace
		err := f.c.Get(ctx, client.ObjectKey{Name: "gone"}, &got)
		return err == nil && got.Status.Phase == corev1.NamespaceTerminating, fmt.Sprint(got.Status.Phase, err)
	})
	ann, _, a := f.startAgentWith(t, ctx, "n4", nil, nil)
	f.service(t, "web", "203.0.113.10")
	waitFor(t, "status of web", func() (bool, string) {
		_, ok := f.statuses(t)["web@n4"]
		return ok && slices.Equal(ann.ips(), []string{"203.0.113.10"}), fmt.Sprintf("%+v", f.statuses(t))
	})
	var m dto.Metric
	if err := a.m.syncs.WithLabelValues("error").(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetHistogram().GetSampleCount(); n != 0 {
		t.Errorf("%d syncs failed", n)
	}
	if _, ok := f.statuses(t)["old@n4"]; ok {
		t.Error("a status was written in the terminating namespace")
	}
}
