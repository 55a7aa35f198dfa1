package pools

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/ipam"
)

// EventInvalidConfiguration is the reason of the Warning Event on a broken configuration
// object.
const EventInvalidConfiguration = "InvalidConfiguration"

// Allocator is the part of the Service reconciler this package drives.
type Allocator interface {
	// SetPools puts the pools in force; the terminating ones (being deleted) keep their
	// holders but hand out nothing new.
	SetPools(pools []*model.Pool, terminating []string) error
	Stats() map[string]ipam.PoolStats
	// Holders returns the Services holding an address of the pool, sorted; ok is false
	// while the held addresses are not restored yet.
	Holders(pool string) (holders []types.NamespacedName, ok bool)
}

// EventRecorder emits events.k8s.io/v1 Events.
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Options configure the Reconciler.
type Options struct {
	Client    client.Client
	Recorder  EventRecorder
	Log       logr.Logger
	Metrics   *Metrics
	Allocator Allocator
	// StatusInterval is the least time between two status flushes (default 1 s).
	StatusInterval time.Duration
}

// Reconciler applies the pool configuration, writes pool status and the conditions of
// every configuration object.
type Reconciler struct {
	opts    Options
	trigger chan struct{}

	mu       sync.Mutex
	prev     *model.Config                 // what the previous Build put in force
	conds    map[objKey][]metav1.Condition // the conditions the controller sets: Valid
	problems map[objKey]string             // last reported problem per object, for Event deduplication
	written  map[objKey]any                // last status written per object (pools) or its conditions (others)
	blocked  map[string]string             // last DeletionBlocked message per terminating pool, for Events
}

// singleton is the one reconcile key of the configuration.
var singleton = reconcile.Request{NamespacedName: types.NamespacedName{Name: "ipaddresspools"}}

// New returns a Reconciler.
func New(opts Options) *Reconciler {
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = time.Second
	}
	return &Reconciler{
		opts:     opts,
		trigger:  make(chan struct{}, 1),
		conds:    map[objKey][]metav1.Condition{},
		problems: map[objKey]string{},
		written:  map[objKey]any{},
		blocked:  map[string]string{},
	}
}

// SetupWithManager registers the configuration controller and the status writer.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.Add(manager.RunnableFunc(r.runStatus)); err != nil {
		return err
	}
	toSingleton := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{singleton}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("ipaddresspool").
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(singleton) // apply the configuration at start, even when there is no pool
			return nil
		})).
		// Pool labels matter to the advertisements' pool selectors.
		// A deletion (deletionTimestamp set) marks the pool terminating.
		Watches(&v1beta1.IPAddressPool{}, toSingleton, builder.WithPredicates(
			predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, deletionStarted)))
	for _, obj := range []client.Object{&v1beta1.L2Advertisement{}, &v1beta1.BGPPeer{},
		&v1beta1.BGPAdvertisement{}, &v1beta1.Community{}, &v1beta1.BFDProfile{}} {
		b = b.Watches(obj, toSingleton, builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	}
	return b.Complete(r)
}

// UsageChanged asks for a status flush (cheap; call it on every allocation change).
func (r *Reconciler) UsageChanged() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Reconcile rebuilds the configuration from every configuration object, puts its pools in
// force and judges every object.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	start := time.Now()
	defer func() { r.opts.Metrics.latency.Observe(time.Since(start).Seconds()) }()
	snap, objs, err := r.snapshot(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	r.mu.Lock()
	snap.Previous = r.prev
	r.mu.Unlock()
	// Everything, not only pools: the allocator needs only the pools (which reference no
	// other kind, so they come out the same), but every object gets its condition here.
	cfg, problems := model.Build(snap)
	pools := make([]*model.Pool, 0, len(cfg.Pools))
	for _, p := range cfg.Pools {
		pools = append(pools, p)
	}
	slices.SortFunc(pools, func(a, b *model.Pool) int { return cmp.Compare(a.Name, b.Name) })
	var terminating []string
	for i := range snap.Pools {
		if snap.Pools[i].DeletionTimestamp != nil {
			terminating = append(terminating, snap.Pools[i].Name)
		}
	}
	if err := r.opts.Allocator.SetPools(pools, terminating); err != nil {
		// Build never puts overlapping pools in force, so this is a bug; keep what is in force.
		return reconcile.Result{}, fmt.Errorf("apply pools: %w", err)
	}
	r.mu.Lock()
	r.prev = cfg
	r.mu.Unlock()
	r.judge(cfg, problems, objs)
	r.opts.Metrics.setInvalid(problems, objs)
	r.UsageChanged()
	return reconcile.Result{}, nil
}

// runStatus is the leader-only status writer: it wakes on UsageChanged, waits out the
// interval so that bursts coalesce, and writes what changed.
func (r *Reconciler) runStatus(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.trigger:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.opts.StatusInterval):
		}
		if err := r.flush(ctx); err != nil {
			r.opts.Log.Error(err, "writing configuration status")
			r.UsageChanged() // retry after the next interval
		}
	}
}

// flush writes the status of every pool and the conditions of every other
// configuration object, where it differs.
func (r *Reconciler) flush(ctx context.Context) error {
	var list v1beta1.IPAddressPoolList
	if err := r.opts.Client.List(ctx, &list); err != nil {
		return err
	}
	stats := r.opts.Allocator.Stats()
	r.opts.Metrics.total.Reset()
	r.opts.Metrics.inUse.Reset()
	for name, st := range stats {
		for fam, fs := range map[string]ipam.FamilyStats{"ipv4": st.IPv4, "ipv6": st.IPv6} {
			if fs.Offered {
				r.opts.Metrics.total.WithLabelValues(name, fam).Set(float64(fs.InUse) + fs.Available.Float64())
				r.opts.Metrics.inUse.WithLabelValues(name, fam).Set(float64(fs.InUse))
			}
		}
	}
	var firstErr error
	for i := range list.Items {
		p := &list.Items[i]
		r.mu.Lock()
		key := objKey{model.KindIPAddressPool, p.Name}
		conds := r.conds[key]
		written, wasWritten := r.written[key]
		r.mu.Unlock()
		extra, gone, err := r.protect(ctx, p)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if gone {
			continue
		}
		want := v1beta1.IPAddressPoolStatus{Conditions: desiredConditions(p.Status.Conditions, append(slices.Clone(conds), extra...))}
		if st, ok := stats[p.Name]; ok {
			want.IPv4Assigned, want.IPv4Available = int64(st.IPv4.InUse), clamp(st.IPv4.Available)
			want.IPv6Assigned, want.IPv6Available = int64(st.IPv6.InUse), clamp(st.IPv6.Available)
		}
		if equality.Semantic.DeepEqual(want, p.Status) || (wasWritten && equality.Semantic.DeepEqual(want, written)) {
			continue
		}
		data, err := json.Marshal(map[string]any{"status": want})
		if err != nil {
			return err
		}
		if err := r.opts.Client.Status().Patch(ctx, p, client.RawPatch(types.MergePatchType, data)); err != nil {
			r.opts.Metrics.statusErrors.Inc()
			if firstErr == nil {
				firstErr = fmt.Errorf("pool %s: %w", p.Name, err)
			}
			continue
		}
		r.opts.Metrics.statusWrites.Inc()
		r.mu.Lock()
		r.written[key] = want
		r.mu.Unlock()
	}
	if err := r.flushConditions(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

func clamp(c ipam.Count) int64 {
	if v := c.Uint64(); v <= math.MaxInt64 {
		return int64(v)
	}
	return math.MaxInt64
}
