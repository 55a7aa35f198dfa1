package service

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/ipam"
)

// Event reasons on Services.
const (
	EventIPAllocated      = "IPAllocated"
	EventAllocationFailed = "AllocationFailed"
	EventIPReleased       = "IPReleased"
	// EventInvalidDataplaneMode: the loadstone.io/dataplane-mode annotation is not pods,
	// nodeport or off; the Service's ipMode stays as it was.
	EventInvalidDataplaneMode = "InvalidDataplaneMode"
)

// EventRecorder emits events.k8s.io/v1 Events (controller-runtime's recorder satisfies it).
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// StatusWriter patches a Service's status subresource (restwrite.Writer, which does not
// decode the returned Service).
type StatusWriter interface {
	PatchServiceStatus(ctx context.Context, namespace, name string, pt types.PatchType, data []byte) error
}

// Options configure the Reconciler.
type Options struct {
	// Client reads from the manager's cache; Status writes the allocations.
	Client   client.Client
	Status   StatusWriter
	Recorder EventRecorder
	Log      logr.Logger
	Metrics  *Metrics
	// RequireClass serves only Services whose loadBalancerClass is loadstone.io/lb
	// (otherwise Services without a class are served too).
	RequireClass bool
	// Workers is the number of parallel reconciles (API writes run concurrently).
	Workers int
	// OnUsageChange is called (without locks held) after pool usage may have changed.
	OnUsageChange func()
}

// Reconciler allocates addresses to Services. Create it with New.
type Reconciler struct {
	opts Options

	mu    sync.Mutex
	alloc *ipam.Allocator
	// modes holds the pools in force, for model.DataplaneMode (only Pools is set).
	modes      *model.Config
	pending    map[types.NamespacedName]struct{}
	unsat      map[types.NamespacedName]string // reason of each False IPAllocated condition
	poolsOnce  sync.Once
	poolsReady chan struct{} // closed at the first successful SetPools
	ready      chan struct{} // closed once Bootstrap restored every held address

	queue atomic.Pointer[workqueue.TypedRateLimitingInterface[reconcile.Request]]
}

// New returns a Reconciler.
func New(opts Options) *Reconciler {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.OnUsageChange == nil {
		opts.OnUsageChange = func() {}
	}
	return &Reconciler{
		opts:       opts,
		alloc:      ipam.New(),
		modes:      &model.Config{},
		pending:    map[types.NamespacedName]struct{}{},
		unsat:      map[types.NamespacedName]string{},
		poolsReady: make(chan struct{}),
		ready:      make(chan struct{}),
	}
}

// SetupWithManager registers the controller and the bootstrap runnable.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return r.Bootstrap(ctx, mgr.GetCache())
	})); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("service").
		For(&corev1.Service{}, builder.WithPredicates(predicate.Funcs{UpdateFunc: r.relevantUpdate})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.pendingIn)).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			r.queue.Store(&q)
			return nil
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.opts.Workers}).
		Complete(r)
}

// relevantUpdate filters Service updates: an update that changed only the status and the
// allocated-from-pool annotation, to exactly what the allocator holds (typically the echo
// of our own patch), needs no reconcile. This halves the reconciles at scale.
func (r *Reconciler) relevantUpdate(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*corev1.Service)
	n, ok2 := e.ObjectNew.(*corev1.Service)
	if !ok1 || !ok2 || n.DeletionTimestamp != nil {
		return true
	}
	if !maps.Equal(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Spec, n.Spec) {
		return true
	}
	for _, k := range []string{v1beta1.AnnotationAddressPool, v1beta1.AnnotationLoadBalancerIPs, v1beta1.AnnotationAllowSharedIP, v1beta1.AnnotationDataplaneMode} {
		if o.Annotations[k] != n.Annotations[k] {
			return true
		}
	}
	al, held := r.Allocation(types.NamespacedName{Namespace: n.Namespace, Name: n.Name})
	if !held || !r.Ours(n) {
		return true
	}
	want, _ := r.ingress(al, n)
	return !sameIngress(n.Status.LoadBalancer.Ingress, want) ||
		n.Annotations[v1beta1.AnnotationAllocatedFromPool] != poolAnnotation(al)
}

// ingress is the status.loadBalancer.ingress for what the Service holds. Each entry's
// ipMode follows the effective dataplane mode of its pool and the Service's
// loadstone.io/dataplane-mode annotation (model.DataplaneMode): Proxy when Loadstone's
// dataplane serves the IP (pods, nodeport), VIP when kube-proxy does (off). An invalid
// annotation is returned as the error, and each entry then keeps the ipMode the Service's
// status has for that IP (a new IP, or one without ipMode, gets its mode without the
// annotation).
func (r *Reconciler) ingress(al ipam.Allocation, svc *corev1.Service) ([]corev1.LoadBalancerIngress, error) {
	r.mu.Lock()
	cfg := r.modes
	r.mu.Unlock()
	var modeErr error
	out := make([]corev1.LoadBalancerIngress, 0, len(al.IPs))
	for i, ip := range al.IPs {
		pool := ""
		if i < len(al.Pools) {
			pool = al.Pools[i]
		}
		mode, err := model.DataplaneMode(cfg, pool, svc.Annotations)
		ipMode := IPModeOf(mode)
		if err != nil {
			modeErr = err
			if cur := currentIPMode(svc, ip); cur != nil {
				ipMode = *cur
			}
		}
		out = append(out, corev1.LoadBalancerIngress{IP: ip.String(), IPMode: &ipMode})
	}
	return out, modeErr
}

// IPModeOf is the ingress ipMode of a dataplane mode: Proxy when Loadstone's dataplane
// serves the IP (kube-proxy then leaves it alone), VIP when kube-proxy serves it.
func IPModeOf(m model.Mode) corev1.LoadBalancerIPMode {
	if m.Serves() {
		return corev1.LoadBalancerIPModeProxy
	}
	return corev1.LoadBalancerIPModeVIP
}

func currentIPMode(svc *corev1.Service, ip netip.Addr) *corev1.LoadBalancerIPMode {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil && a.Unmap() == ip && in.IPMode != nil {
			return in.IPMode
		}
	}
	return nil
}

func poolAnnotation(al ipam.Allocation) string {
	return strings.Join(slices.Compact(slices.Clone(al.Pools)), ",")
}

// Ours reports whether the Service is one Loadstone serves.
func (r *Reconciler) Ours(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if c := svc.Spec.LoadBalancerClass; c != nil {
		return *c == v1beta1.LoadBalancerClass
	}
	return !r.opts.RequireClass
}

// SetPools applies a validated pool configuration. Addresses no pool covers any more are
// released and their Services (and every pending one) are reconciled again. An invalid
// set (overlapping ranges) changes nothing.
//
// A pool whose dataplane mode changed has every Service holding one of its addresses
// reconciled again, so their ipMode follows.
//
// The terminating pools (being deleted, kept by the pool-protection finalizer) stay in
// force for the Services holding their addresses but hand out nothing new
// (ipam.Allocator.SetTerminating).
func (r *Reconciler) SetPools(pools []*model.Pool, terminating []string) error {
	r.mu.Lock()
	affected, err := r.alloc.SetPools(pools)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.alloc.SetTerminating(terminating...)
	modes := &model.Config{Pools: make(map[string]*model.Pool, len(pools))}
	var changed []string
	for _, p := range pools {
		modes.Pools[p.Name] = p
		if old := r.modes.Pools[p.Name]; old == nil || old.DataplaneMode != p.DataplaneMode {
			changed = append(changed, p.Name)
		}
	}
	r.modes = modes
	affected = append(affected, r.alloc.ServicesIn(changed...)...)
	keys := r.pendingKeysLocked()
	r.mu.Unlock()
	r.poolsOnce.Do(func() { close(r.poolsReady) })
	r.enqueue(append(affected, keys...))
	r.opts.OnUsageChange()
	return nil
}

// Stats returns the pools' usage.
func (r *Reconciler) Stats() map[string]ipam.PoolStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.alloc.Stats()
}

// Holders returns the Services holding an address of the pool, sorted; ok is false until
// Bootstrap has restored the held addresses (before that the answer means nothing).
func (r *Reconciler) Holders(pool string) (holders []types.NamespacedName, ok bool) {
	select {
	case <-r.ready:
	default:
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.alloc.ServicesIn(pool), true
}

// Allocation returns what the Service holds (for tests and diagnostics).
func (r *Reconciler) Allocation(svc types.NamespacedName) (ipam.Allocation, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.alloc.Get(svc)
}

// Ready is closed once Bootstrap has restored the held addresses.
func (r *Reconciler) Ready() <-chan struct{} { return r.ready }

func (r *Reconciler) pendingKeysLocked() []types.NamespacedName {
	out := make([]types.NamespacedName, 0, len(r.pending))
	for k := range r.pending {
		out = append(out, k)
	}
	return out
}

func (r *Reconciler) enqueue(keys []types.NamespacedName) {
	q := r.queue.Load()
	if q == nil {
		return // the controller has not started; its initial list covers every Service
	}
	for _, k := range keys {
		(*q).Add(reconcile.Request{NamespacedName: k})
	}
}

func (r *Reconciler) pendingIn(_ context.Context, o client.Object) []reconcile.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []reconcile.Request
	for k := range r.pending {
		if k.Namespace == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: k})
		}
	}
	return out
}

// Bootstrap waits for the caches and the first pool configuration, then restores the
// addresses that served Services hold in their status, oldest first, before any reconcile
// runs.
func (r *Reconciler) Bootstrap(ctx context.Context, c interface {
	WaitForCacheSync(context.Context) bool
}) error {
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("service bootstrap: caches did not sync")
	}
	select {
	case <-r.poolsReady:
	case <-ctx.Done():
		return nil
	}
	var list corev1.ServiceList
	if err := r.opts.Client.List(ctx, &list); err != nil {
		return fmt.Errorf("service bootstrap: list Services: %w", err)
	}
	svcs := list.Items
	slices.SortFunc(svcs, func(a, b corev1.Service) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time),
			cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	restored, lost := 0, 0
	r.mu.Lock()
	for i := range svcs {
		svc := &svcs[i]
		held := ingressIPs(svc)
		if !r.Ours(svc) || len(held) == 0 {
			continue
		}
		req, _ := ipam.ParseService(svc, r.namespaceLabels(ctx, svc.Namespace))
		got := r.alloc.Restore(req, held)
		restored += len(got)
		lost += len(held) - len(got)
	}
	r.mu.Unlock()
	r.opts.Log.Info("restored addresses from Service status", "restored", restored, "notRestored", lost)
	close(r.ready)
	r.opts.OnUsageChange()
	return nil
}

func ingressIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func (r *Reconciler) namespaceLabels(ctx context.Context, ns string) map[string]string {
	var n corev1.Namespace
	if err := r.opts.Client.Get(ctx, types.NamespacedName{Name: ns}, &n); err != nil {
		return nil
	}
	return n.Labels
}

// release frees what the Service holds; it reports whether it held anything.
func (r *Reconciler) release(key types.NamespacedName) bool {
	r.mu.Lock()
	held := r.alloc.Release(key)
	delete(r.pending, key)
	r.setUnsatisfiedLocked(key, "")
	var keys []types.NamespacedName
	if held {
		keys = r.pendingKeysLocked()
	}
	r.mu.Unlock()
	if held {
		r.enqueue(keys)
		r.opts.OnUsageChange()
	}
	return held
}

// Reconcile allocates for one Service and writes the result.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	select {
	case <-r.ready:
	case <-ctx.Done():
		return reconcile.Result{}, ctx.Err()
	}
	start := time.Now()
	defer func() { r.opts.Metrics.latency.Observe(time.Since(start).Seconds()) }()
	log := r.opts.Log.WithValues("service", req.NamespacedName)

	var svc corev1.Service
	if err := r.opts.Client.Get(ctx, req.NamespacedName, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			if r.release(req.NamespacedName) {
				log.V(1).Info("released addresses of a deleted Service")
			}
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if !r.Ours(&svc) || svc.DeletionTimestamp != nil {
		held := r.release(req.NamespacedName)
		// A Service that left type LoadBalancer has its status cleared by the API server;
		// drop our annotation too. Never touch another class's Service we did not serve.
		// Our condition goes too (it is ours: we served the Service).
		_, annotated := svc.Annotations[v1beta1.AnnotationAllocatedFromPool]
		if annotated && (held || svc.Spec.Type != corev1.ServiceTypeLoadBalancer) ||
			hasCondition(&svc) && svc.DeletionTimestamp == nil {
			if err := r.write(ctx, &svc, ipam.Allocation{}, []corev1.LoadBalancerIngress{}, held, nil); err != nil {
				return reconcile.Result{}, err
			}
		}
		return reconcile.Result{}, nil
	}

	request, err := ipam.ParseService(&svc, r.namespaceLabels(ctx, svc.Namespace))
	var al ipam.Allocation
	r.mu.Lock()
	before, _ := r.alloc.Get(req.NamespacedName)
	if err != nil {
		// A bad request never withdraws what the Service holds.
		al = before
	} else {
		al, err = r.alloc.Assign(request)
	}
	cond := allocatedCondition(&svc, al, err)
	if err != nil {
		r.pending[req.NamespacedName] = struct{}{}
		r.setUnsatisfiedLocked(req.NamespacedName, cond.Reason)
	} else {
		delete(r.pending, req.NamespacedName)
		r.setUnsatisfiedLocked(req.NamespacedName, "")
	}
	r.mu.Unlock()
	if !slices.Equal(before.IPs, al.IPs) {
		r.opts.OnUsageChange()
	}

	want, modeErr := r.ingress(al, &svc)
	if werr := r.write(ctx, &svc, al, want, true, &cond); werr != nil {
		return reconcile.Result{}, werr
	}
	if modeErr != nil {
		// The Event writer drops exact repeats, so a reconcile loop does not flood.
		r.opts.Recorder.Eventf(&svc, nil, corev1.EventTypeWarning, EventInvalidDataplaneMode, "SetIPMode",
			"%v; ipMode stays as it was", modeErr)
		log.V(1).Info("invalid dataplane mode annotation", "error", modeErr)
	}
	if err != nil {
		reason := ipam.ReasonOf(err)
		r.opts.Metrics.failures.WithLabelValues(string(reason)).Inc()
		note := err.Error()
		if len(al.IPs) > 0 {
			note += fmt.Sprintf(" (keeping %s)", joinIPs(al.IPs))
		}
		r.opts.Recorder.Eventf(&svc, nil, corev1.EventTypeWarning, EventAllocationFailed, "Allocate", "%s", note)
		log.V(1).Info("allocation failed", "reason", reason, "error", err)
	}
	return reconcile.Result{}, nil
}

// write makes the Service's annotation, status and IPAllocated condition match al (whose
// ingress is want) and cond (nil: no condition, ours is deleted if present), in one
// strategic merge patch to the status subresource, which merges status.conditions by
// type and so leaves other controllers' conditions alone. It writes nothing when nothing
// differs, and emits IPAllocated / IPReleased when the addresses changed.
func (r *Reconciler) write(ctx context.Context, svc *corev1.Service, al ipam.Allocation, want []corev1.LoadBalancerIngress, events bool, cond *metav1.Condition) error {
	pool := poolAnnotation(al)
	curPool, hasPool := svc.Annotations[v1beta1.AnnotationAllocatedFromPool]
	var conds []any
	switch {
	case cond != nil:
		if c, changed := conditionFor(svc, *cond, metav1.Now()); changed {
			conds = []any{c}
		}
	case hasCondition(svc):
		conds = []any{map[string]string{"type": v1beta1.ConditionIPAllocated, "$patch": "delete"}}
	}
	if sameIngress(svc.Status.LoadBalancer.Ingress, want) && curPool == pool && hasPool == (pool != "") && len(conds) == 0 {
		return nil
	}
	body := statusPatch(want, pool, hasPool)
	body.Status.Conditions = conds
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	old := ingressIPs(svc)
	if err := r.opts.Status.PatchServiceStatus(ctx, svc.Namespace, svc.Name, types.StrategicMergePatchType, data); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // deleted meanwhile; the delete event releases it
		}
		return fmt.Errorf("patch status of %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	r.opts.Metrics.allocated.Inc()
	if !events {
		return nil
	}
	var gone []netip.Addr
	for _, ip := range old {
		if !slices.Contains(al.IPs, ip) {
			gone = append(gone, ip)
		}
	}
	if len(gone) > 0 {
		r.opts.Recorder.Eventf(svc, nil, corev1.EventTypeWarning, EventIPReleased, "Release", "released %s (no pool covers it any more, it is a special-purpose address, or the Service's request changed)", joinIPs(gone))
	}
	if len(al.IPs) > 0 && !slices.Equal(old, al.IPs) {
		r.opts.Recorder.Eventf(svc, nil, corev1.EventTypeNormal, EventIPAllocated, "Allocate", "assigned %s from pool %s", joinIPs(al.IPs), pool)
	}
	return nil
}

// patchBody is the strategic merge patch of write: the annotation (null deletes it), the
// ingress (an atomic list: replaced) and our condition (merged by type; a "$patch":
// "delete" entry deletes it).
type patchBody struct {
	Metadata *patchMeta  `json:"metadata,omitempty"`
	Status   patchStatus `json:"status"`
}

type patchMeta struct {
	Annotations map[string]*string `json:"annotations"`
}

type patchStatus struct {
	LoadBalancer patchLB `json:"loadBalancer"`
	Conditions   []any   `json:"conditions,omitempty"`
}

type patchLB struct {
	Ingress []corev1.LoadBalancerIngress `json:"ingress"`
}

func statusPatch(ingress []corev1.LoadBalancerIngress, pool string, hasPool bool) patchBody {
	p := patchBody{Status: patchStatus{LoadBalancer: patchLB{Ingress: ingress}}}
	switch {
	case pool != "":
		p.Metadata = &patchMeta{Annotations: map[string]*string{v1beta1.AnnotationAllocatedFromPool: &pool}}
	case hasPool:
		p.Metadata = &patchMeta{Annotations: map[string]*string{v1beta1.AnnotationAllocatedFromPool: nil}}
	}
	return p
}

func sameIngress(cur, want []corev1.LoadBalancerIngress) bool {
	if len(cur) != len(want) {
		return false
	}
	for i := range cur {
		if cur[i].IP != want[i].IP || cur[i].Hostname != "" || len(cur[i].Ports) > 0 ||
			cur[i].IPMode == nil || *cur[i].IPMode != *want[i].IPMode {
			return false
		}
	}
	return true
}

func joinIPs(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}
