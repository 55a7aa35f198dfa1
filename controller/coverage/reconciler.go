package coverage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// EventRecorder emits events.k8s.io/v1 Events.
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Options configure the Reconciler.
type Options struct {
	// Client reads from the manager's cache and writes L2Advertisement status.
	Client   client.Client
	Recorder EventRecorder
	Log      logr.Logger
	Metrics  *Metrics
	// Ours reports whether Loadstone serves a Service (type and loadBalancerClass).
	Ours func(*corev1.Service) bool
	// Interval is the time between two checks (default 5 s).
	Interval time.Duration
	// Grace is how long an IP must stay unannounceable before it is reported (default
	// 30 s): speakers need a moment after an allocation, and an advertisement is often
	// created just after its pool.
	Grace time.Duration
	// Clock defaults to the real clock.
	Clock clock.WithTicker
}

// Reconciler checks, every Interval, which allocated IPs no node can announce and which
// L2Advertisement interfaces no reporting node has. It is a leader-only manager Runnable.
type Reconciler struct {
	opts    Options
	tracker *Tracker
	prev    *model.Config
}

// New returns a Reconciler.
func New(opts Options) *Reconciler {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 30 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Reconciler{opts: opts, tracker: NewTracker(opts.Grace)}
}

// Start runs the checks until ctx ends (manager.Runnable; needs the leader election).
func (r *Reconciler) Start(ctx context.Context) error {
	for {
		next := r.opts.Interval
		wakeAt, err := r.Check(ctx)
		if err != nil && ctx.Err() == nil { // when stopping, a list cut short is no failure
			r.opts.Metrics.errors.Inc()
			r.opts.Log.Error(err, "coverage check")
		}
		if !wakeAt.IsZero() {
			next = min(next, max(wakeAt.Sub(r.opts.Clock.Now()), 0))
		}
		t := r.opts.Clock.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

// Check runs one round: observe, compute, emit, write. It returns when the next finding
// becomes due (zero when none is pending).
func (r *Reconciler) Check(ctx context.Context) (time.Time, error) {
	// A list from an informer that cannot sync (missing RBAC) would wait for ever.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	in, svcs, err := r.observe(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := r.opts.Clock.Now()
	res := r.tracker.Step(now, Unannounced(in))
	counts := map[Reason]map[netip.Addr]bool{}
	for _, f := range res.Due {
		if counts[f.Reason] == nil {
			counts[f.Reason] = map[netip.Addr]bool{}
		}
		counts[f.Reason][f.IP] = true
	}
	for _, reason := range Reasons {
		r.opts.Metrics.unannounced.WithLabelValues(string(reason)).Set(float64(len(counts[reason])))
	}
	for _, f := range res.New {
		if s := svcs[f.Service]; s != nil {
			r.opts.Recorder.Eventf(s, nil, corev1.EventTypeWarning, string(f.Reason), "Announce", "%s", f.Message)
		}
		r.opts.Log.Info("allocated IP announced by no node", "service", f.Service.String(), "ip", f.IP.String(),
			"reason", string(f.Reason), "message", f.Message)
	}
	return res.WakeAt, r.writeInterfaceConditions(ctx)
}

// observe lists what Unannounced needs.
func (r *Reconciler) observe(ctx context.Context) (Input, map[types.NamespacedName]*corev1.Service, error) {
	c := r.opts.Client
	var snap model.Snapshot
	var (
		pools    v1beta1.IPAddressPoolList
		l2       v1beta1.L2AdvertisementList
		peers    v1beta1.BGPPeerList
		bgp      v1beta1.BGPAdvertisementList
		bfds     v1beta1.BFDProfileList
		comms    v1beta1.CommunityList
		svcs     corev1.ServiceList
		nodes    corev1.NodeList
		epSlices discoveryv1.EndpointSliceList
	)
	for _, l := range []client.ObjectList{&pools, &l2, &peers, &bgp, &bfds, &comms} {
		if err := c.List(ctx, l); err != nil {
			return Input{}, nil, fmt.Errorf("list %T: %w", l, err)
		}
	}
	snap.Pools, snap.L2Advertisements, snap.BGPPeers = pools.Items, l2.Items, peers.Items
	snap.BGPAdvertisements, snap.BFDProfiles, snap.Communities = bgp.Items, bfds.Items, comms.Items
	snap.Previous = r.prev
	cfg, _ := model.Build(snap) // the pools reconciler reports the problems
	r.prev = cfg
	if err := c.List(ctx, &svcs, client.UnsafeDisableDeepCopy); err != nil {
		return Input{}, nil, fmt.Errorf("list Services: %w", err)
	}
	if err := c.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return Input{}, nil, fmt.Errorf("list Nodes: %w", err)
	}
	if err := c.List(ctx, &epSlices, client.UnsafeDisableDeepCopy); err != nil {
		return Input{}, nil, fmt.Errorf("list EndpointSlices: %w", err)
	}
	pub, err := r.published(ctx)
	if err != nil {
		return Input{}, nil, err
	}
	in := Input{Config: cfg, ExcludeLabel: v1beta1.LabelExcludeFromLB, Published: pub}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				ready = cond.Status == corev1.ConditionTrue
			}
		}
		in.Nodes = append(in.Nodes, Node{Name: n.Name, Labels: n.Labels, Ready: ready})
	}
	endpoints := readyNodes(epSlices.Items)
	byKey := map[types.NamespacedName]*corev1.Service{}
	for i := range svcs.Items {
		s := &svcs.Items[i]
		if r.opts.Ours != nil && !r.opts.Ours(s) {
			continue
		}
		var ips []netip.Addr
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ip, err := netip.ParseAddr(ing.IP); err == nil {
				ips = append(ips, ip)
			}
		}
		if len(ips) == 0 {
			continue
		}
		key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
		byKey[key] = s
		svc := Service{Key: key, IPs: ips, LocalTraffic: s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal}
		if a := s.Annotations[v1beta1.AnnotationAllocatedFromPool]; a != "" {
			svc.Pools = strings.Split(a, ",")
		}
		if ep, ok := endpoints[key]; ok {
			svc.HasReadyEndpoint, svc.ReadyNodes = true, ep
		}
		in.Services = append(in.Services, svc)
	}
	return in, byKey, nil
}

// published reads what the speakers report announcing.
func (r *Reconciler) published(ctx context.Context) (*Published, error) {
	var l2 v1beta1.ServiceL2StatusList
	if err := r.opts.Client.List(ctx, &l2, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list ServiceL2Statuses: %w", err)
	}
	var bgp v1beta1.BGPSessionStatusList
	if err := r.opts.Client.List(ctx, &bgp, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list BGPSessionStatuses: %w", err)
	}
	pub := &Published{L2: map[netip.Addr]bool{}}
	for i := range l2.Items {
		for _, s := range l2.Items[i].Status.IPs {
			if ip, err := netip.ParseAddr(s); err == nil {
				pub.L2[ip.Unmap()] = true
			}
		}
	}
	for i := range bgp.Items {
		st := &bgp.Items[i].Status
		if st.SessionState != v1beta1.BGPStateEstablished {
			continue
		}
		if int(st.AdvertisedCount) > len(st.Advertised) {
			pub.BGPPartial = true
		}
		for _, a := range st.Advertised {
			if p, err := netip.ParsePrefix(a.Prefix); err == nil {
				pub.BGP = append(pub.BGP, p)
			}
		}
	}
	return pub, nil
}

// readyNodes returns, per Service with a ready endpoint, the nodes holding one (ready
// unset counts as ready, as for kube-proxy).
func readyNodes(items []discoveryv1.EndpointSlice) map[types.NamespacedName]map[string]bool {
	out := map[types.NamespacedName]map[string]bool{}
	for i := range items {
		es := &items[i]
		name := es.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		key := types.NamespacedName{Namespace: es.Namespace, Name: name}
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if out[key] == nil {
				out[key] = map[string]bool{}
			}
			if ep.NodeName != nil {
				out[key][*ep.NodeName] = true
			}
		}
	}
	return out
}

// writeInterfaceConditions sets InterfacesFound on every L2Advertisement that names
// interfaces, from the speakers' ServiceL2Status reports, and removes it from those that
// name none. Only status.conditions is patched, with the other conditions as read (the
// pools reconciler owns Valid and does the same with ours).
func (r *Reconciler) writeInterfaceConditions(ctx context.Context) error {
	var ads v1beta1.L2AdvertisementList
	if err := r.opts.Client.List(ctx, &ads); err != nil {
		return fmt.Errorf("list L2Advertisements: %w", err)
	}
	var sts v1beta1.ServiceL2StatusList
	if err := r.opts.Client.List(ctx, &sts, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list ServiceL2Statuses: %w", err)
	}
	reports := make([]InterfaceReport, 0, len(sts.Items))
	for i := range sts.Items {
		st := &sts.Items[i].Status
		reports = append(reports, InterfaceReport{Node: st.Node, Interfaces: st.Interfaces, Missing: st.MissingInterfaces})
	}
	named := map[string][]string{}
	for i := range ads.Items {
		named[ads.Items[i].Name] = ads.Items[i].Spec.Interfaces
	}
	verdicts := InterfaceConditions(named, reports)
	var errs []error
	for i := range ads.Items {
		ad := &ads.Items[i]
		have := ad.Status.Conditions
		want := slices.Clone(have)
		if v, ok := verdicts[ad.Name]; ok {
			meta.SetStatusCondition(&want, metav1.Condition{Type: v1beta1.ConditionInterfacesFound, Status: v.Status,
				Reason: v.Reason, Message: v.Message, ObservedGeneration: ad.Generation,
				LastTransitionTime: metav1.NewTime(r.opts.Clock.Now())})
		} else {
			meta.RemoveStatusCondition(&want, v1beta1.ConditionInterfacesFound)
		}
		if conditionsEqual(have, want) {
			continue
		}
		// The resourceVersion makes the patch conditional: the conditions are written
		// whole, so one built on a stale read would put back an old Valid condition that
		// the pools reconciler (which remembers what it wrote) would not correct.
		data, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": ad.ResourceVersion},
			"status": map[string]any{"conditions": want}})
		if err != nil {
			return err
		}
		if err := r.opts.Client.Status().Patch(ctx, ad, client.RawPatch(types.MergePatchType, data)); err != nil {
			if apierrors.IsConflict(err) {
				continue // changed since the cache read it: the next check writes again
			}
			errs = append(errs, fmt.Errorf("L2Advertisement %s: %w", ad.Name, err))
		}
	}
	return errors.Join(errs...)
}

// conditionsEqual compares what matters (not the transition times, which
// SetStatusCondition keeps when the status is unchanged).
func conditionsEqual(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message &&
			x.ObservedGeneration == y.ObservedGeneration
	})
}
