package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/heal"
	"github.com/loadstone-lb/loadstone/speaker/layer2"
	"github.com/loadstone-lb/loadstone/speaker/members"
	"github.com/loadstone-lb/loadstone/speaker/observe"
	"github.com/loadstone-lb/loadstone/speaker/report"
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

// Recorder emits Events (events.k8s.io style).
type Recorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Config configures an Agent.
type Config struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	NodeName   string
	// Cache serves reads and informers; Client writes ServiceL2Status objects.
	Cache    cache.Cache
	Client   client.Client
	Recorder Recorder
	// Announcers apply the decided state, in order; the one whose Report carries L2 is
	// the layer-2 announcer (see Layer2).
	Announcers []Announcer
	// Dataplane, when set, is applied before the Announcers; the IPs its Report.Carried
	// lists gate them (announce only when ready: an IP in Snapshot.Gated is announced
	// only once the dataplane carries it). Nil: no dataplane, and gated IPs are never
	// announced.
	Dataplane Announcer
	// Clock drives every wait of the loop (default: the real clock).
	Clock clock.WithTicker
	// Interfaces lists this node's interface names (default: net.Interfaces).
	Interfaces func() (map[string]bool, error)
	// MinSyncInterval coalesces bursts of changes (default 5 ms; negative: none);
	// ResyncPeriod forces a full sync (default 30 s); RetryBase and RetryMax bound the backoff after a failed
	// sync (default 100 ms, 30 s).
	MinSyncInterval time.Duration
	ResyncPeriod    time.Duration
	RetryBase       time.Duration
	RetryMax        time.Duration
	// Heal holds the layer-2 heal policy's timers (package heal; zero: its defaults).
	Heal heal.Config
}

// Agent is the speaker's loop: observe → decide → apply. It implements manager.Runnable.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	clock clock.WithTicker
	queue workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	members Members
	// viewChanged tells forwardMemberChanges that UseMembers replaced the view.
	viewChanged chan struct{}
	// pending are the heal events since the last step (releases, conflicts).
	pending []heal.Event

	// Loop state, owned by the loop goroutine.
	last      time.Time
	prevCfg   *model.Config
	heal      *heal.Machine
	applied   heal.Applied
	statuses  *report.Statuses
	events    *report.Events
	bgpEvents *report.BGPEvents
	// announced are the series of loadstone_speaker_announced; owners each layer-2 IP's
	// last known owner (for the failover and handover counters).
	announced map[announcedKey]bool
	owners    map[netip.Addr]string
}

// syncKey is the queue's only item: every change asks for one whole sync.
const syncKey = "sync"

// New returns an Agent.
func New(cfg Config) *Agent {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Interfaces == nil {
		cfg.Interfaces = localInterfaces
	}
	if cfg.MinSyncInterval == 0 {
		cfg.MinSyncInterval = 5 * time.Millisecond
	}
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = 30 * time.Second
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](cfg.RetryBase, cfg.RetryMax),
		workqueue.TypedRateLimitingQueueConfig[string]{Clock: cfg.Clock})
	return &Agent{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer), clock: cfg.Clock, queue: q, viewChanged: make(chan struct{}, 1),
		heal: heal.New(cfg.NodeName, cfg.Heal), statuses: report.NewStatuses(), events: report.NewEvents(), bgpEvents: report.NewBGPEvents()}
}

// UseMembers sets the membership view (nil: degraded, Node readiness).
func (a *Agent) UseMembers(m Members) {
	a.mu.Lock()
	a.members = m
	a.mu.Unlock()
	select {
	case a.viewChanged <- struct{}{}:
	default:
	}
	a.Trigger()
}

func (a *Agent) membersView() Members {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.members
}

// Trigger asks for a sync.
func (a *Agent) Trigger() { a.queue.Add(syncKey) }

// OnConflict queues a duplicate-owner report from the layer-2 announcer; it never blocks.
func (a *Agent) OnConflict(c layer2.Conflict) {
	a.note(heal.Event{Kind: heal.Conflict, IP: c.IP, Interface: c.Interface, Ours: c.Ours, Theirs: c.Theirs})
}

// note queues a heal event and asks for a sync. The queue is bounded: a flood of
// duplicate-owner packets for one IP collapses, as the policy decides once per interval.
func (a *Agent) note(e heal.Event) {
	a.mu.Lock()
	if len(a.pending) < 1024 {
		a.pending = append(a.pending, e)
	}
	a.mu.Unlock()
	a.Trigger()
}

func (a *Agent) takeEvents() []heal.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.pending
	a.pending = nil
	return e
}

// noteReleased records the IPs another node's ServiceL2Status stopped listing (the object
// was deleted, or updated without them). That node has withdrawn them (it applies before
// it reports), so if we hold one, the network may still point at that node (heal's
// reclaim rule). This catches what membership alone misses, for example a cut so short
// that this node never saw its peers die, so no peer "arrives" when it heals.
func (a *Agent) noteReleased(oldObj, newObj any) {
	if t, ok := oldObj.(toolscache.DeletedFinalStateUnknown); ok {
		oldObj = t.Obj
	}
	prev, ok := oldObj.(*v1beta1.ServiceL2Status)
	if !ok || prev.Labels[v1beta1.LabelStatusNode] == a.cfg.NodeName {
		a.Trigger()
		return
	}
	still := map[string]bool{}
	if cur, ok := newObj.(*v1beta1.ServiceL2Status); ok {
		for _, s := range cur.Status.IPs {
			still[s] = true
		}
	}
	n := 0
	for _, s := range prev.Status.IPs {
		if ip, err := netip.ParseAddr(s); err == nil && !still[s] {
			a.note(heal.Event{Kind: heal.Release, IP: ip.Unmap(), Node: prev.Labels[v1beta1.LabelStatusNode]})
			n++
		}
	}
	if n == 0 {
		a.Trigger()
	}
}

// YieldsTo reports whether the tie-break makes this node give ip up to the speaker that
// owns the link-layer address theirs (false for a MAC that is no speaker's). It is the
// layer-2 announcer's early hint (layer2.Config.YieldsTo); the heal policy decides the
// same way from the same inputs and withdraws the IP.
func (a *Agent) YieldsTo(ip netip.Addr, theirs net.HardwareAddr) bool {
	m := a.membersView()
	if m == nil {
		return false
	}
	return announce.ResolveConflict(a.cfg.NodeName, members.OwnerOfMAC(m.All(), theirs), ip) == announce.Yield
}

// NeedLeaderElection: every speaker runs.
func (a *Agent) NeedLeaderElection() bool { return false }

// watched are the kinds whose changes ask for a sync.
func watched() []client.Object {
	return []client.Object{&corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Node{}, &corev1.Namespace{},
		&v1beta1.IPAddressPool{}, &v1beta1.L2Advertisement{}, &v1beta1.ServiceL2Status{},
		&v1beta1.BGPPeer{}, &v1beta1.BGPAdvertisement{}, &v1beta1.BFDProfile{}, &v1beta1.Community{}, &corev1.Secret{}}
}

// Start registers the watches and runs the loop until ctx ends.
func (a *Agent) Start(ctx context.Context) error {
	defer a.queue.ShutDown()
	for _, obj := range watched() {
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
	go func() {
		<-ctx.Done()
		a.queue.ShutDown()
	}()
	go a.forwardMemberChanges(ctx)
	a.Trigger()
	for {
		k, shutdown := a.queue.Get()
		if shutdown {
			return nil
		}
		a.process(ctx, k)
		a.queue.Done(k)
	}
}

// forwardMemberChanges turns membership changes into syncs, following UseMembers.
func (a *Agent) forwardMemberChanges(ctx context.Context) {
	var cur Members
	var changes <-chan struct{}
	for {
		if m := a.membersView(); m != cur {
			cur, changes = m, nil
			if m != nil {
				changes = m.Changes()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
			a.Trigger()
		case <-a.viewChanged:
		}
	}
}

// process runs one sync for the queue item, at most once per MinSyncInterval, and
// schedules the next: at the policy's wake time, after a backoff on failure, and at
// least once per ResyncPeriod.
func (a *Agent) process(ctx context.Context, k string) {
	now := a.clock.Now()
	if d := a.cfg.MinSyncInterval - now.Sub(a.last); !a.last.IsZero() && d > 0 {
		a.queue.AddAfter(k, d)
		return
	}
	a.last = now
	wakeAt, err := a.sync(ctx, now)
	if err != nil {
		a.log.Error("sync failed; retrying with backoff", "err", err, "retries", a.queue.NumRequeues(k))
		a.queue.AddRateLimited(k)
	} else {
		a.queue.Forget(k)
	}
	if !wakeAt.IsZero() {
		a.queue.AddAfter(k, wakeAt.Sub(now))
	}
	a.queue.AddAfter(k, a.cfg.ResyncPeriod)
}

// sync runs one observe → decide → apply → report round at now.
func (a *Agent) sync(ctx context.Context, now time.Time) (time.Time, error) {
	snap, err := a.observe(ctx)
	if err != nil {
		a.m.syncs.WithLabelValues("error").Observe(a.clock.Since(now).Seconds())
		return time.Time{}, err
	}
	// Decide.
	res, wakeAt := a.heal.Step(now, &snap, a.applied, a.takeEvents())
	a.logDecision(res)
	// Apply.
	rep, l2 := a.apply(ctx, Decision{Snapshot: &snap, Alive: res.Alive, L2: L2Decision{Desired: res.Desired, Reannounce: res.Reannounce}})
	res.Desired = l2.Desired // without the IPs withheld until the dataplane carries them
	a.owners = a.countTakeovers(a.cfg.NodeName, res.Plan, a.applied, rep.L2, a.owners, aliveFunc(&snap, res.Alive), snap.Members)
	a.applied = rep.L2
	var bgpIPs map[netip.Addr][]types.NamespacedName
	if rep.BGP != nil {
		bgpIPs = rep.BGP.Announced
	}
	a.setAnnounced(announcedSeries(res.Plan, rep.L2, bgpIPs))
	// Report.
	applied := report.Applied{Interfaces: rep.L2, Errors: rep.errorsByIP()}
	evs := report.ConflictEvents(a.cfg.NodeName, res.Conflicts, res.Plan)
	evs = append(evs, a.events.Diff(&snap, res.Plan, applied)...)
	if rep.BGP != nil {
		evs = append(evs, a.bgpEvents.Diff(a.cfg.NodeName, rep.BGP.Sessions, rep.BGP.Problems)...)
	}
	a.emit(&snap, evs)
	plan := a.statuses.Diff(now, &snap, res.Plan, res.Alive, res.Desired, applied)
	errs := []error{a.writeStatus(ctx, plan)}
	if rep.BGP != nil {
		errs = append(errs, a.writeBGPStatus(ctx, now, &snap, rep.BGP))
	}
	if len(rep.Errors) > 0 {
		errs = append(errs, fmt.Errorf("announcers: %w", errors.Join(rep.Errors...)))
	}
	err = errors.Join(errs...)
	a.m.degraded.Set(b2f(snap.Degraded))
	a.m.problems.Set(float64(len(res.Plan.Problems)))
	a.m.elected.Set(float64(len(res.Plan.Own)))
	result := "ok"
	if err != nil {
		result = "error"
	}
	a.m.syncs.WithLabelValues(result).Observe(a.clock.Since(now).Seconds())
	return wakeAt, err
}

// logDecision logs and counts what the heal policy decided beyond the plan.
func (a *Agent) logDecision(res heal.Result) {
	for _, d := range res.Conflicts {
		if d.RateLimited {
			continue
		}
		a.m.conflicts.WithLabelValues(d.Action.String()).Inc()
		other := d.Other
		if other == "" {
			other = "a host that is not a speaker"
		}
		a.log.Warn("duplicate owner", "ip", d.IP, "iface", d.Interface, "ourMAC", d.Ours.String(),
			"theirMAC", d.Theirs.String(), "peer", other, "action", d.Action.String())
	}
	if len(res.ReclaimReasons) > 0 {
		for _, r := range res.ReclaimReasons {
			a.m.reclaims.WithLabelValues(r).Inc()
		}
		a.log.Info("re-announcing owned IPs", "ips", res.Reannounce, "reasons", res.ReclaimReasons)
	}
	if len(res.Debouncing) > 0 {
		a.log.Debug("not acting on deaths yet (debounce)", "members", res.Debouncing)
	}
}

// observe reads the membership, the cache and the interfaces, and builds the snapshot.
func (a *Agent) observe(ctx context.Context) (observe.Snapshot, error) {
	in := observe.Input{Self: a.cfg.NodeName, Previous: a.prevCfg}
	// Read the arrival count before the lists, so every arrival it counts is in the alive
	// set: an arrival after it must not make this round re-announce an IP that a fresh
	// election would move to the arriving peer. A later arrival triggers another round.
	if m := a.membersView(); m == nil || m.Degraded() {
		in.Degraded = true
	} else {
		in.Arrivals = m.Arrivals()
		in.Alive = m.Alive()
		in.Members = m.All()
	}
	var (
		pools    v1beta1.IPAddressPoolList
		ads      v1beta1.L2AdvertisementList
		peers    v1beta1.BGPPeerList
		bgpAds   v1beta1.BGPAdvertisementList
		bfds     v1beta1.BFDProfileList
		comms    v1beta1.CommunityList
		secrets  corev1.SecretList
		svcs     corev1.ServiceList
		eps      discoveryv1.EndpointSliceList
		nodes    corev1.NodeList
		nss      corev1.NamespaceList
		statuses v1beta1.ServiceL2StatusList
	)
	for _, l := range []client.ObjectList{&pools, &ads, &svcs, &eps, &nodes, &nss, &statuses, &peers, &bgpAds, &bfds, &comms, &secrets} {
		if err := a.cfg.Cache.List(ctx, l); err != nil {
			return observe.Snapshot{}, fmt.Errorf("list %T: %w", l, err)
		}
	}
	in.Lists = observe.Lists{Pools: pools.Items, L2Advertisements: ads.Items, Services: svcs.Items,
		EndpointSlices: eps.Items, Nodes: nodes.Items, Namespaces: nss.Items, Statuses: statuses.Items,
		BGPPeers: peers.Items, BGPAdvertisements: bgpAds.Items, BFDProfiles: bfds.Items, Communities: comms.Items,
		Secrets: secrets.Items}
	if ifs, err := a.cfg.Interfaces(); err == nil {
		in.Interfaces = ifs
	} else {
		a.log.Warn("listing interfaces failed; not checking advertisement interfaces", "err", err)
	}
	snap := observe.Build(in)
	for _, p := range snap.ConfigProblems {
		// The controller owns the conditions of configuration objects; log at debug.
		a.log.Debug("configuration problem", "problem", p.String())
	}
	a.prevCfg = snap.Config
	return snap, nil
}

// emit writes the decided Events; their regarding objects come from the snapshot.
func (a *Agent) emit(snap *observe.Snapshot, evs []report.Event) {
	for _, e := range evs {
		var obj runtime.Object
		if e.Peer != "" {
			uid, ok := snap.Peers[e.Peer]
			if !ok {
				continue
			}
			p := &v1beta1.BGPPeer{}
			p.Name, p.UID = e.Peer, uid
			obj = p
		} else if e.Advertisement != "" {
			uid, ok := snap.Advertisements[e.Advertisement]
			if !ok {
				continue
			}
			ad := &v1beta1.L2Advertisement{}
			ad.Name, ad.UID = e.Advertisement, uid
			obj = ad
		} else {
			s, ok := snap.Services[e.Service]
			if !ok {
				continue
			}
			svc := &corev1.Service{}
			svc.Namespace, svc.Name, svc.UID = e.Service.Namespace, e.Service.Name, s.UID
			obj = svc
		}
		a.cfg.Recorder.Eventf(obj, nil, e.Type, e.Reason, e.Action, "%s", e.Note)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
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
