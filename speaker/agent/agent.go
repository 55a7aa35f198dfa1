package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/layer2"
	"github.com/loadstone-lb/loadstone/speaker/members"
)

// Members is the membership view the agent reads.
type Members interface {
	Alive() map[string]bool
	Degraded() bool
	All() map[string]members.Member
	Changes() <-chan struct{}
	// Arrivals counts peers becoming alive (see members.Members.Arrivals).
	Arrivals() uint64
}

// Announcer applies the desired layer-2 state.
type Announcer interface {
	Apply(layer2.Desired) layer2.Applied
	Reannounce(ips ...netip.Addr)
}

// Recorder emits Events (events.k8s.io style).
type Recorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Event reasons.
const (
	EventAnnouncerChanged = "L2AnnouncerChanged"
	EventDuplicateOwner   = "L2DuplicateOwner"
	EventInterfaceMissing = "L2InterfaceMissing"
	EventNoInterface      = "L2NoUsableInterface"
	EventIPNotInPool      = "L2IPNotInPool"
	EventAnnounceFailed   = "L2AnnounceFailed"
)

// Config configures an Agent.
type Config struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	NodeName   string
	// Cache serves reads and informers; Client writes ServiceL2Status objects.
	Cache     cache.Cache
	Client    client.Client
	Recorder  Recorder
	Announcer Announcer
	// Interfaces lists this node's interface names (default: net.Interfaces).
	Interfaces func() (map[string]bool, error)
	// MinSyncInterval coalesces bursts of changes (default 5 ms); ResyncPeriod forces a full
	// sync (default 30 s); HoldDown is how long at most a yielded IP stays withdrawn
	// (default 10 s; it ends earlier once the node we yielded to is a live member, since
	// from then on the election and the other node agree).
	MinSyncInterval time.Duration
	ResyncPeriod    time.Duration
	HoldDown        time.Duration
	// DeathDebounce delays a sync that would act on a member's death (default 50 ms; see
	// debounceDeath). Negative disables it.
	DeathDebounce time.Duration
	// ReclaimDelay is how long after a peer (re)appears, or another node releases one of
	// our IPs, this node re-announces what it still owns (default 250 ms; scheduleReclaim).
	ReclaimDelay time.Duration
}

// Agent is the layer-2 reconcile loop. It implements manager.Runnable.
type Agent struct {
	cfg       Config
	log       *slog.Logger
	m         *metrics
	trigger   chan struct{}
	conflicts chan layer2.Conflict

	mu      sync.Mutex
	members Members
	// released: IPs other nodes' ServiceL2Status objects stopped listing, and by whom
	// (noteReleased).
	released map[netip.Addr]string

	// Loop state, owned by the loop goroutine.
	prevCfg      *model.Config
	prevWinners  map[netip.Addr]string
	prevAlive    map[string]bool
	prevArrivals uint64
	arrivalsSeen bool // prevArrivals holds a real reading (the first one is a baseline)
	prevProblems map[string]bool
	lastPlan     announce.Plan
	suppressed   map[netip.Addr]suppression
	lastConflict map[netip.Addr]time.Time
	// reassert: IPs a duplicate-owner conflict touched, re-announced by the next sync if
	// this node still announces them (handleConflict).
	reassert map[netip.Addr]bool
	// A pending re-announce round (scheduleReclaim).
	reclaimAt      time.Time
	reclaimAll     bool
	reclaimIPs     map[netip.Addr]bool
	reclaimReasons []string
	// gcDone remembers (service, node) status objects of dead nodes already deleted, so a
	// partitioned node that recreates its object is not fought over; an entry goes when
	// its node is alive again.
	gcDone map[gcKey]bool
}

type gcKey struct {
	svc  types.NamespacedName
	node string
}

// New returns an Agent.
func New(cfg Config) *Agent {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interfaces == nil {
		cfg.Interfaces = localInterfaces
	}
	if cfg.MinSyncInterval <= 0 {
		cfg.MinSyncInterval = 5 * time.Millisecond
	}
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = 30 * time.Second
	}
	if cfg.DeathDebounce == 0 {
		cfg.DeathDebounce = 50 * time.Millisecond
	}
	if cfg.HoldDown <= 0 {
		cfg.HoldDown = 10 * time.Second
	}
	if cfg.ReclaimDelay <= 0 {
		cfg.ReclaimDelay = 250 * time.Millisecond
	}
	return &Agent{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer),
		trigger: make(chan struct{}, 1), conflicts: make(chan layer2.Conflict, 128),
		prevWinners: map[netip.Addr]string{}, prevAlive: map[string]bool{}, prevProblems: map[string]bool{},
		suppressed: map[netip.Addr]suppression{}, lastConflict: map[netip.Addr]time.Time{}, gcDone: map[gcKey]bool{},
		released: map[netip.Addr]string{}, reclaimIPs: map[netip.Addr]bool{}, reassert: map[netip.Addr]bool{}}
}

// noteReleased records the IPs another node's ServiceL2Status stopped listing (the object
// was deleted, or updated without them) and triggers a sync. That node has withdrawn them
// (it applies before it reports), so if we own one, the network may still point at that
// node: sync schedules a re-announce (scheduleReclaim). This catches what membership alone
// misses, for example a cut so short that this node never saw its peers die, so no peer
// "arrives" when it heals.
func (a *Agent) noteReleased(oldObj, newObj any) {
	if t, ok := oldObj.(toolscache.DeletedFinalStateUnknown); ok {
		oldObj = t.Obj
	}
	prev, ok := oldObj.(*v1beta1.ServiceL2Status)
	if ok && prev.Labels[v1beta1.LabelStatusNode] != a.cfg.NodeName {
		var still []string
		if cur, ok := newObj.(*v1beta1.ServiceL2Status); ok {
			still = cur.Status.IPs
		}
		a.mu.Lock()
		for _, s := range prev.Status.IPs {
			if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(still, s) {
				a.released[ip.Unmap()] = prev.Labels[v1beta1.LabelStatusNode]
			}
		}
		a.mu.Unlock()
	}
	a.Trigger()
}

// takeReleased returns and clears the IPs noteReleased recorded.
func (a *Agent) takeReleased() map[netip.Addr]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.released
	a.released = map[netip.Addr]string{}
	return r
}

// UseMembers sets the membership view (nil: degraded, Node readiness).
func (a *Agent) UseMembers(m Members) {
	a.mu.Lock()
	a.members = m
	a.mu.Unlock()
	a.Trigger()
}

func (a *Agent) membersView() Members {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.members
}

// Trigger asks for a sync.
func (a *Agent) Trigger() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// OnConflict queues a duplicate-owner report from the Announcer; it never blocks.
func (a *Agent) OnConflict(c layer2.Conflict) {
	select {
	case a.conflicts <- c:
	default:
	}
}

// NeedLeaderElection: every speaker runs.
func (a *Agent) NeedLeaderElection() bool { return false }

// Start registers the watches and runs the loop until ctx ends.
func (a *Agent) Start(ctx context.Context) error {
	for _, obj := range []client.Object{&corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Node{},
		&v1beta1.IPAddressPool{}, &v1beta1.L2Advertisement{}, &v1beta1.ServiceL2Status{}} {
		inf, err := a.cfg.Cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		h := toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { a.Trigger() },
			UpdateFunc: func(any, any) { a.Trigger() },
			DeleteFunc: func(any) { a.Trigger() },
		}
		if _, ok := obj.(*v1beta1.ServiceL2Status); ok {
			h.UpdateFunc = func(o, n any) { a.noteReleased(o, n) }
			h.DeleteFunc = func(o any) { a.noteReleased(o, nil) }
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("handler for %T: %w", obj, err)
		}
	}
	if !a.cfg.Cache.WaitForCacheSync(ctx) {
		return errors.New("cache did not sync")
	}
	a.Trigger()
	resync := time.NewTicker(a.cfg.ResyncPeriod)
	defer resync.Stop()
	var wake <-chan time.Time
	var memberChanges <-chan struct{}
	last := time.Time{}
	for {
		if m := a.membersView(); m != nil {
			memberChanges = m.Changes()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.trigger:
		case <-memberChanges:
		case <-resync.C:
		case <-wake:
		case c := <-a.conflicts:
			a.handleConflict(ctx, c)
			continue
		}
		if d := a.cfg.MinSyncInterval - time.Since(last); d > 0 {
			time.Sleep(d)
		}
		a.debounceDeath()
		last = time.Now()
		next, err := a.sync(ctx)
		wake = nil
		if err != nil {
			a.log.Error("layer-2 sync failed; retrying", "err", err)
			next = time.Second
		}
		if next > 0 {
			wake = time.After(next)
		}
	}
}

// debounceDeath waits DeathDebounce when a member that was alive at the last sync is now
// missing. A node returning from a partition gossips the death of everyone it lost (with
// incarnation numbers that match), and the victims refute it within milliseconds; acting
// at once would move IPs to a third node and back (seen in B1 as a double flip of the
// router's entry).
func (a *Agent) debounceDeath() {
	m := a.membersView()
	if m == nil || m.Degraded() || a.cfg.DeathDebounce <= 0 {
		return
	}
	alive := m.Alive()
	for n := range a.prevAlive {
		if !alive[n] {
			time.Sleep(a.cfg.DeathDebounce)
			return
		}
	}
}

// sync runs one observe/compute/apply/report round. It returns when to run again (0:
// only on change).
func (a *Agent) sync(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	// Read the arrival count before the snapshot, so every arrival it counts is in the
	// snapshot's alive set: an arrival after it must not make this round re-announce an IP
	// that a fresh election would move to the arriving peer (that re-announcement pulled the
	// network back to a node about to yield: flapping after a partition healed). A later
	// arrival triggers another round through Changes.
	var arrivals uint64
	m := a.membersView()
	if m != nil {
		arrivals = m.Arrivals()
	}
	released := a.takeReleased()
	snap, err := a.observe(ctx)
	if err != nil {
		a.m.syncs.WithLabelValues("error").Observe(time.Since(start).Seconds())
		return 0, err
	}
	plan := announce.Compute(snap)
	a.lastPlan = plan
	desired := layer2.Desired(plan.Desired())
	var next time.Duration
	now := time.Now()
	for ip, sup := range a.suppressed {
		until := sup.until
		if now.After(until) || (sup.to != "" && snap.Alive[sup.to]) {
			delete(a.suppressed, ip)
			continue
		}
		if _, ok := desired[ip]; ok {
			delete(desired, ip)
			if d := until.Sub(now); next == 0 || d < next {
				next = d
			}
		}
	}
	applied := a.cfg.Announcer.Apply(desired)
	for _, err := range applied.Errors {
		a.log.Warn("announce failed", "err", err)
	}
	// A member that (re)appeared may have answered for our IPs meanwhile (a healed
	// partition): one gratuitous round puts the network back on the elected node. Arrivals
	// also counts deaths refuted within the debounce, which the alive sets alone miss: a
	// short cut of this node lets another node take its IPs without this node ever seeing
	// its peers gone for long.
	gained := false
	for n := range snap.Alive {
		if !a.prevAlive[n] && n != a.cfg.NodeName {
			gained = true
		}
	}
	if m != nil && arrivals != a.prevArrivals {
		gained = gained || a.arrivalsSeen
		a.prevArrivals, a.arrivalsSeen = arrivals, true
	}
	if gained && len(a.prevAlive) > 0 {
		a.scheduleReclaim(now, "arrival", nil)
	}
	// A release counts only from a node we see alive: it withdrew knowing we are here.
	// From a node we think dead it is news from the other side of a partition that has
	// not healed in our membership view yet, and our ownership may be stale too.
	for ip, node := range released {
		if _, ok := applied.Interfaces[ip]; ok && snap.Alive[node] {
			a.scheduleReclaim(now, "released", &ip)
		}
	}
	// IPs a conflict left with us (handleConflict); a yielded one is not in applied.
	var reassert []netip.Addr
	for ip := range a.reassert {
		if _, ok := applied.Interfaces[ip]; ok {
			reassert = append(reassert, ip)
		}
	}
	clear(a.reassert)
	if len(reassert) > 0 {
		a.cfg.Announcer.Reannounce(reassert...)
	}
	if d := a.reclaim(now, applied); d > 0 && (next == 0 || d < next) {
		next = d
	}
	a.prevAlive = snap.Alive

	a.m.degraded.Set(b2f(snap.Degraded))
	a.m.problems.Set(float64(len(plan.Problems)))
	a.m.elected.Set(float64(len(plan.Own)))
	a.events(ctx, plan, applied)
	err = a.status(ctx, plan, applied, desired, snap.Alive)
	res := "ok"
	if err != nil {
		res = "error"
	}
	a.m.syncs.WithLabelValues(res).Observe(time.Since(start).Seconds())
	return next, err
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observe builds the compute input from the cache and the membership view.
func (a *Agent) observe(ctx context.Context) (announce.Snapshot, error) {
	var pools v1beta1.IPAddressPoolList
	var ads v1beta1.L2AdvertisementList
	var svcs corev1.ServiceList
	var slices_ discoveryv1.EndpointSliceList
	var nodes corev1.NodeList
	for _, l := range []client.ObjectList{&pools, &ads, &svcs, &slices_, &nodes} {
		if err := a.cfg.Cache.List(ctx, l); err != nil {
			return announce.Snapshot{}, fmt.Errorf("list %T: %w", l, err)
		}
	}
	cfg, problems := model.Build(model.Snapshot{Pools: pools.Items, L2Advertisements: ads.Items, Previous: a.prevCfg})
	for _, p := range problems {
		// The controller owns the conditions of configuration objects; log at debug.
		a.log.Debug("configuration problem", "problem", p.String())
	}
	a.prevCfg = cfg

	snap := announce.Snapshot{Self: a.cfg.NodeName, Config: cfg, ExcludeLabel: v1beta1.LabelExcludeFromLB}
	if ifs, err := a.cfg.Interfaces(); err == nil {
		snap.Interfaces = ifs
	} else {
		a.log.Warn("listing interfaces failed; not checking advertisement interfaces", "err", err)
	}
	m := a.membersView()
	if m == nil || m.Degraded() {
		snap.Degraded = true
		snap.Alive = map[string]bool{}
	} else {
		snap.Alive = m.Alive()
	}
	for _, n := range nodes.Items {
		snap.Nodes = append(snap.Nodes, announce.Node{Name: n.Name, Labels: n.Labels, Ready: nodeReady(&n)})
	}
	eps := map[types.NamespacedName][]discoveryv1.EndpointSlice{}
	for _, s := range slices_.Items {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		k := types.NamespacedName{Namespace: s.Namespace, Name: name}
		eps[k] = append(eps[k], s)
	}
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		if c := s.Spec.LoadBalancerClass; c != nil && *c != v1beta1.LoadBalancerClass {
			continue
		}
		k := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
		svc := announce.Service{Key: k, Pool: s.Annotations[v1beta1.AnnotationAllocatedFromPool],
			LocalTraffic: s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
			ReadyNodes:   map[string]bool{}}
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ip, err := netip.ParseAddr(ing.IP); err == nil {
				svc.IPs = append(svc.IPs, ip.Unmap())
			}
		}
		if len(svc.IPs) == 0 {
			continue
		}
		for _, es := range eps[k] {
			for _, e := range es.Endpoints {
				if e.Conditions.Ready != nil && !*e.Conditions.Ready {
					continue
				}
				svc.HasReadyEndpoint = true
				if e.NodeName != nil {
					svc.ReadyNodes[*e.NodeName] = true
				}
			}
		}
		snap.Services = append(snap.Services, svc)
	}
	return snap, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func localInterfaces() (map[string]bool, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, i := range ifs {
		out[i.Name] = true
	}
	return out, nil
}

// events emits announcer-change and problem Events (each problem once while it lasts).
func (a *Agent) events(ctx context.Context, plan announce.Plan, applied layer2.Applied) {
	self := a.cfg.NodeName
	winners := map[netip.Addr]string{}
	for ip, e := range plan.Elections {
		winners[ip] = e.Result.Winner
		prev, seen := a.prevWinners[ip]
		if seen && prev == e.Result.Winner {
			continue
		}
		switch {
		case e.Result.Winner == self:
			if _, ok := applied.Interfaces[ip]; !ok {
				continue
			}
			for _, k := range e.Services {
				was := prev
				if !seen {
					// No election of ours to compare with (this agent just started, or
					// saw the IP first now): the published status says who announced it.
					was = a.publishedAnnouncer(ctx, k, ip)
				}
				if was == "" {
					was = "none"
				}
				a.serviceEvent(ctx, k, corev1.EventTypeNormal, EventAnnouncerChanged, "Announce",
					"node %s announces %s on %s (previously: %s)", self, ip, strings.Join(applied.Interfaces[ip], ","), was)
			}
		case prev == self:
			now := e.Result.Winner
			if now == "" {
				now = "none (" + e.Result.Status.String() + ")"
			}
			for _, k := range e.Services {
				a.serviceEvent(ctx, k, corev1.EventTypeNormal, EventAnnouncerChanged, "Withdraw",
					"node %s stopped announcing %s; now: %s", self, ip, now)
			}
		}
	}
	a.prevWinners = winners

	current := map[string]bool{}
	for _, p := range plan.Problems {
		key := fmt.Sprintf("%d/%s/%s/%s", p.Kind, p.Advertisement, p.Interface, p.IP)
		current[key] = true
		if a.prevProblems[key] {
			continue
		}
		switch p.Kind {
		case announce.InterfaceMissing:
			msg := fmt.Sprintf("L2Advertisement %s names interface %q, which node %s does not have; %s is announced on its other interfaces", p.Advertisement, p.Interface, a.cfg.NodeName, p.IP)
			var ad v1beta1.L2Advertisement
			if err := a.cfg.Cache.Get(ctx, client.ObjectKey{Name: p.Advertisement}, &ad); err == nil {
				a.cfg.Recorder.Eventf(&ad, nil, corev1.EventTypeWarning, EventInterfaceMissing, "Announce", "%s", msg)
			}
			for _, k := range p.Services {
				a.serviceEvent(ctx, k, corev1.EventTypeWarning, EventInterfaceMissing, "Announce", "%s", msg)
			}
		case announce.NoUsableInterface:
			for _, k := range p.Services {
				a.serviceEvent(ctx, k, corev1.EventTypeWarning, EventNoInterface, "Announce",
					"node %s is elected for %s but has none of the interfaces its L2Advertisements name; not announced", a.cfg.NodeName, p.IP)
			}
		case announce.IPNotInPool:
			for _, k := range p.Services {
				a.serviceEvent(ctx, k, corev1.EventTypeWarning, EventIPNotInPool, "Announce",
					"%s belongs to no IPAddressPool; not announced", p.IP)
			}
		}
	}
	a.prevProblems = current
}

// publishedAnnouncer returns another node whose ServiceL2Status for the Service lists ip,
// or "" when there is none.
func (a *Agent) publishedAnnouncer(ctx context.Context, k types.NamespacedName, ip netip.Addr) string {
	var l v1beta1.ServiceL2StatusList
	if err := a.cfg.Cache.List(ctx, &l, client.InNamespace(k.Namespace),
		client.MatchingLabels{v1beta1.LabelStatusService: k.Name}); err != nil {
		return ""
	}
	for _, st := range l.Items {
		if n := st.Labels[v1beta1.LabelStatusNode]; n != a.cfg.NodeName && slices.Contains(st.Status.IPs, ip.String()) {
			return n
		}
	}
	return ""
}

func (a *Agent) serviceEvent(ctx context.Context, k types.NamespacedName, typ, reason, action, format string, args ...any) {
	var svc corev1.Service
	if err := a.cfg.Cache.Get(ctx, k, &svc); err != nil {
		return
	}
	a.cfg.Recorder.Eventf(&svc, nil, typ, reason, action, format, args...)
}

// StatusName is the name of the ServiceL2Status of (service, node).
func StatusName(service, node string) string {
	h := sha256.Sum256([]byte(node))
	return service + "-" + hex.EncodeToString(h[:5])
}

// status reconciles this node's ServiceL2Status objects, and deletes another node's
// object for a Service whose IPs this node has taken over.
func (a *Agent) status(ctx context.Context, plan announce.Plan, applied layer2.Applied, desired layer2.Desired, alive map[string]bool) error {
	self := a.cfg.NodeName
	type want struct {
		ips, ifaces []string
		failed      []string
		missing     bool
	}
	wants := map[types.NamespacedName]*want{}
	get := func(k types.NamespacedName) *want {
		if wants[k] == nil {
			wants[k] = &want{}
		}
		return wants[k]
	}
	errsByIP := map[netip.Addr][]string{}
	for _, err := range applied.Errors {
		var ipErr *layer2.IPError
		if errors.As(err, &ipErr) {
			errsByIP[ipErr.IP] = append(errsByIP[ipErr.IP], err.Error())
		}
	}
	for _, o := range plan.Own {
		if _, ok := desired[o.IP]; !ok {
			continue // yielded for now
		}
		for _, k := range o.Services {
			w := get(k)
			if ifs, ok := applied.Interfaces[o.IP]; ok {
				w.ips = append(w.ips, o.IP.String())
				w.ifaces = append(w.ifaces, ifs...)
			}
			w.failed = append(w.failed, errsByIP[o.IP]...)
		}
	}
	for _, p := range plan.Problems {
		if p.Kind == announce.NoUsableInterface {
			for _, k := range p.Services {
				w := get(k)
				w.missing = true
				w.failed = append(w.failed, fmt.Sprintf("%s: none of the named interfaces exists on this node", p.IP))
			}
		}
	}

	var existing v1beta1.ServiceL2StatusList
	if err := a.cfg.Cache.List(ctx, &existing); err != nil {
		return fmt.Errorf("list ServiceL2Status: %w", err)
	}
	var errs []error
	// Forget deletions for nodes that are back, whether or not they have an object now
	// (the same Service name may be reused later, and its status must be collectable).
	for k := range a.gcDone {
		if alive[k.node] {
			delete(a.gcDone, k)
		}
	}
	// IPs that live nodes other than this one publish, per Service: a dead node's status
	// is collected once every IP it lists is announced again, by this node or another.
	claimed := map[types.NamespacedName]map[string]bool{}
	for _, st := range existing.Items {
		if n := st.Labels[v1beta1.LabelStatusNode]; n != self && alive[n] {
			k := types.NamespacedName{Namespace: st.Namespace, Name: st.Labels[v1beta1.LabelStatusService]}
			if claimed[k] == nil {
				claimed[k] = map[string]bool{}
			}
			for _, ip := range st.Status.IPs {
				claimed[k][ip] = true
			}
		}
	}
	mine := map[types.NamespacedName]*v1beta1.ServiceL2Status{}
	for i := range existing.Items {
		st := &existing.Items[i]
		k := types.NamespacedName{Namespace: st.Namespace, Name: st.Labels[v1beta1.LabelStatusService]}
		if st.Labels[v1beta1.LabelStatusNode] == self {
			if _, ok := wants[k]; !ok {
				if err := a.cfg.Client.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
				continue
			}
			mine[k] = st
			continue
		}
		// Another node's object: delete it, once, when that node is not alive, we announce
		// one of its IPs, and each of the others is announced by us or by another live
		// node (a dual-stack Service's two IPs may go to two nodes).
		node := st.Labels[v1beta1.LabelStatusNode]
		gk := gcKey{svc: k, node: node}
		if alive[node] {
			continue
		}
		w, ok := wants[k]
		if !ok || len(w.ips) == 0 || len(st.Status.IPs) == 0 || a.gcDone[gk] {
			a.log.Debug("not deleting a dead node's status", "status", st.Namespace+"/"+st.Name, "node", node,
				"weAnnounce", ok && len(w.ips) > 0, "itsIPs", st.Status.IPs, "deletedBefore", a.gcDone[gk])
			continue
		}
		all := true
		for _, ip := range st.Status.IPs {
			if !slices.Contains(w.ips, ip) && !claimed[k][ip] {
				all = false
			}
		}
		if all {
			a.gcDone[gk] = true
			a.log.Info("deleting the status of a dead node whose IPs live nodes announce", "status", st.Namespace+"/"+st.Name,
				"node", node, "ips", st.Status.IPs)
			if err := a.cfg.Client.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
				delete(a.gcDone, gk) // try again next sync
				errs = append(errs, err)
			}
		} else {
			a.log.Debug("not deleting a dead node's status: it lists IPs no live node announces yet", "status", st.Namespace+"/"+st.Name,
				"node", node, "ips", st.Status.IPs, "ours", w.ips)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(wants), func(x, y types.NamespacedName) int { return strings.Compare(x.String(), y.String()) }) {
		w := wants[k]
		slices.Sort(w.ips)
		w.ips = slices.Compact(w.ips)
		slices.Sort(w.ifaces)
		w.ifaces = slices.Compact(w.ifaces)
		cond := metav1.Condition{Type: v1beta1.ConditionAnnounced, Status: metav1.ConditionTrue,
			Reason: v1beta1.ReasonAnnounced, Message: "answering ARP/NDP"}
		if len(w.failed) > 0 {
			cond.Status = metav1.ConditionFalse
			cond.Reason = v1beta1.ReasonAnnounceFailed
			if w.missing {
				cond.Reason = v1beta1.ReasonInterfaceMissing
			}
			cond.Message = strings.Join(w.failed, "; ")
		}
		st := mine[k]
		if st == nil {
			var svc corev1.Service
			if err := a.cfg.Cache.Get(ctx, k, &svc); err != nil {
				continue // the Service is gone; its next sync drops it
			}
			st = &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{
				Namespace: k.Namespace, Name: StatusName(k.Name, self),
				Labels:          map[string]string{v1beta1.LabelStatusNode: self, v1beta1.LabelStatusService: k.Name},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID}},
			}}
			if err := a.cfg.Client.Create(ctx, st); err != nil && !apierrors.IsAlreadyExists(err) {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					// The Service goes with its namespace; nothing to report, no retry.
					a.log.Debug("not creating a status in a terminating namespace", "service", k.String())
					continue
				}
				errs = append(errs, fmt.Errorf("create status of %s: %w", k, err))
				continue
			} else if apierrors.IsAlreadyExists(err) {
				if err := a.cfg.Client.Get(ctx, client.ObjectKeyFromObject(st), st); err != nil {
					errs = append(errs, err)
					continue
				}
			}
		}
		next := st.DeepCopy()
		next.Status.Node, next.Status.ServiceName = self, k.Name
		next.Status.IPs, next.Status.Interfaces = w.ips, w.ifaces
		meta.SetStatusCondition(&next.Status.Conditions, cond)
		if statusEqual(st.Status, next.Status) {
			continue
		}
		// A merge patch of the status: no conflict on a stale resourceVersion from the cache.
		if err := a.cfg.Client.Status().Patch(ctx, next, client.MergeFrom(st)); err != nil {
			errs = append(errs, fmt.Errorf("update status of %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

func statusEqual(a, b v1beta1.ServiceL2StatusStatus) bool {
	if a.Node != b.Node || a.ServiceName != b.ServiceName || !slices.Equal(a.IPs, b.IPs) || !slices.Equal(a.Interfaces, b.Interfaces) || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}

// handleConflict applies the duplicate-owner tie-break (announce.ResolveConflict).
func (a *Agent) handleConflict(ctx context.Context, c layer2.Conflict) {
	now := time.Now()
	// The announcer may have stopped the IP's gratuitous burst already (YieldsTo). If this
	// node keeps the IP after all (the tie-break's winner is not eligible in our view, or
	// the decision below is rate-limited), the next sync re-announces it, or the network
	// could stay on the other node until its neighbour entry goes stale.
	a.reassert[c.IP] = true
	a.Trigger()
	if t, ok := a.lastConflict[c.IP]; ok && now.Sub(t) < time.Second {
		return // one decision per IP per second; the layer2 metric counts every packet
	}
	a.lastConflict[c.IP] = now
	other := ""
	if m := a.membersView(); m != nil {
		other = macOwner(m.All(), c.Theirs)
	}
	e, owned := a.lastPlan.Elections[c.IP]
	action := announce.ResolveConflict(a.cfg.NodeName, other, c.IP)
	a.m.conflicts.WithLabelValues(action.String()).Inc()
	otherName := other
	if otherName == "" {
		otherName = "a host that is not a speaker"
	}
	a.log.Warn("duplicate owner", "ip", c.IP, "iface", c.Interface, "ourMAC", c.Ours.String(),
		"theirMAC", c.Theirs.String(), "peer", otherName, "action", action.String())
	if owned {
		for _, k := range e.Services {
			a.serviceEvent(ctx, k, corev1.EventTypeWarning, EventDuplicateOwner, action.String(),
				"%s is answered by node %s (%s) and by %s (%s) on %s; tie-break: node %s %s",
				c.IP, a.cfg.NodeName, c.Ours, otherName, c.Theirs, c.Interface, a.cfg.NodeName, strings.ToLower(action.String())+"s")
		}
	}
	switch action {
	case announce.Defend:
		a.cfg.Announcer.Reannounce(c.IP)
	case announce.Yield:
		a.suppressed[c.IP] = suppression{until: now.Add(a.cfg.HoldDown), to: other}
		a.Trigger()
	}
}

// YieldsTo reports whether the tie-break makes this node give ip up to the speaker that
// owns the link-layer address theirs (false for a MAC that is no speaker's). It is the
// layer-2 Announcer's early hint (layer2.Config.YieldsTo); handleConflict decides the same
// way from the same inputs and withdraws the IP.
func (a *Agent) YieldsTo(ip netip.Addr, theirs net.HardwareAddr) bool {
	m := a.membersView()
	if m == nil {
		return false
	}
	return announce.ResolveConflict(a.cfg.NodeName, macOwner(m.All(), theirs), ip) == announce.Yield
}

// scheduleReclaim asks for a gratuitous round ReclaimDelay from now, for ip (nil: every
// owned IP). The round re-announces only what this node still owns then: a heal reaches
// the nodes' membership views one peer at a time, and a node that re-announced on the
// first arrival pulled the network to itself just before the next arrival (the rightful
// owner's) made it yield (B1: the router's entry went elected → stand-in → elected).
func (a *Agent) scheduleReclaim(now time.Time, reason string, ip *netip.Addr) {
	if a.reclaimAt.IsZero() {
		a.reclaimAt = now.Add(a.cfg.ReclaimDelay)
	}
	a.reclaimReasons = append(a.reclaimReasons, reason)
	if ip == nil {
		a.reclaimAll = true
	} else {
		a.reclaimIPs[*ip] = true
	}
}

// reclaim runs a due round and returns how long until a pending one is due (0: none).
func (a *Agent) reclaim(now time.Time, applied layer2.Applied) time.Duration {
	if a.reclaimAt.IsZero() {
		return 0
	}
	if d := a.reclaimAt.Sub(now); d > 0 {
		return d
	}
	var ips []netip.Addr
	for ip := range applied.Interfaces {
		if a.reclaimAll || a.reclaimIPs[ip] {
			ips = append(ips, ip)
		}
	}
	if len(ips) > 0 {
		slices.SortFunc(ips, func(x, y netip.Addr) int { return x.Compare(y) })
		slices.Sort(a.reclaimReasons)
		reasons := slices.Compact(a.reclaimReasons)
		for _, r := range reasons {
			a.m.reclaims.WithLabelValues(r).Inc()
		}
		a.log.Info("re-announcing owned IPs", "ips", ips, "reasons", reasons)
		a.cfg.Announcer.Reannounce(ips...)
	}
	a.reclaimAt, a.reclaimAll, a.reclaimReasons = time.Time{}, false, nil
	clear(a.reclaimIPs)
	return 0
}

// suppression is a yielded IP: withdrawn until a time, or until the node it was yielded
// to is a live member.
type suppression struct {
	until time.Time
	to    string
}

// macOwner finds the speaker whose member metadata lists mac.
func macOwner(all map[string]members.Member, mac net.HardwareAddr) string {
	for _, name := range slices.Sorted(maps.Keys(all)) {
		for _, m := range DecodeMACs(all[name].Meta) {
			if m.String() == mac.String() {
				return name
			}
		}
	}
	return ""
}

// EncodeMACs packs Ethernet addresses (6 bytes each, at most 80) for member metadata.
func EncodeMACs(macs []net.HardwareAddr) []byte {
	var b []byte
	for _, m := range macs {
		if len(m) == 6 && len(b) < 80*6 {
			b = append(b, m...)
		}
	}
	return b
}

// DecodeMACs unpacks EncodeMACs.
func DecodeMACs(b []byte) []net.HardwareAddr {
	var out []net.HardwareAddr
	for len(b) >= 6 {
		out = append(out, net.HardwareAddr(slices.Clone(b[:6])))
		b = b[6:]
	}
	return out
}
