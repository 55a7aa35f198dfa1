package pools

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// EventDeletionBlocked is the reason of the Warning Event on a pool whose deletion waits
// for the Services holding its addresses.
const EventDeletionBlocked = "DeletionBlocked"

// deletionStarted passes the update that sets a pool's deletionTimestamp.
var deletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp() == nil && e.ObjectNew.GetDeletionTimestamp() != nil
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// protect keeps the pool-protection finalizer right (the status writer calls it for every
// listed pool, leader only): a live pool without it gets it; a terminating pool that no
// Service holds loses it (gone: the API server then deletes the pool, whose status is not
// worth writing); a terminating pool that Services hold gets the DeletionBlocked
// condition (returned for the status write) and a Warning Event naming them, once per
// distinct set of holders. Nothing is removed before the held addresses are restored.
func (r *Reconciler) protect(ctx context.Context, p *v1beta1.IPAddressPool) (conds []metav1.Condition, gone bool, err error) {
	has := controllerutil.ContainsFinalizer(p, v1beta1.FinalizerPoolProtection)
	if p.DeletionTimestamp == nil {
		if has {
			return nil, false, nil
		}
		return nil, false, r.patchFinalizer(ctx, p, true)
	}
	if !has {
		return nil, false, nil // deleted before it was protected, or already released
	}
	holders, ok := r.opts.Allocator.Holders(p.Name)
	if !ok {
		return nil, false, nil // not restored yet: every pool looks unused
	}
	if len(holders) == 0 {
		r.mu.Lock()
		delete(r.blocked, p.Name)
		r.mu.Unlock()
		if err := r.patchFinalizer(ctx, p, false); err != nil {
			return nil, false, err
		}
		r.opts.Log.Info("pool released: no Service holds its addresses any more", "pool", p.Name)
		return nil, true, nil
	}
	names := make([]string, len(holders))
	for i, h := range holders {
		names[i] = h.String()
	}
	noun := "Services hold"
	if len(holders) == 1 {
		noun = "Service holds"
	}
	msg := fmt.Sprintf("deletion waits until no Service holds an address of the pool; %d %s: %s",
		len(holders), noun, capList(names, maxListed))
	c := metav1.Condition{Type: v1beta1.ConditionDeletionBlocked, Status: metav1.ConditionTrue,
		Reason: v1beta1.ReasonInUse, Message: msg, ObservedGeneration: p.Generation}
	r.mu.Lock()
	changed := r.blocked[p.Name] != msg
	r.blocked[p.Name] = msg
	r.mu.Unlock()
	if changed {
		r.opts.Recorder.Eventf(p, nil, corev1.EventTypeWarning, EventDeletionBlocked, "Delete", "%s", msg)
		r.opts.Log.Info("pool deletion waits for its holders", "pool", p.Name, "holders", len(holders),
			"first", strings.Join(names[:min(len(names), maxListed)], ","))
	}
	return []metav1.Condition{c}, false, nil
}

// patchFinalizer adds or removes the pool-protection finalizer with a merge patch that
// carries the resourceVersion read, so that it never overwrites another change of the
// finalizers (a conflict is retried at the next flush).
func (r *Reconciler) patchFinalizer(ctx context.Context, p *v1beta1.IPAddressPool, add bool) error {
	orig := p.DeepCopy()
	obj := p.DeepCopy()
	if add {
		controllerutil.AddFinalizer(obj, v1beta1.FinalizerPoolProtection)
	} else {
		controllerutil.RemoveFinalizer(obj, v1beta1.FinalizerPoolProtection)
	}
	err := r.opts.Client.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		r.UsageChanged() // read it again at the next flush
		return nil
	}
	verb := "add"
	if !add {
		verb = "remove"
	}
	return fmt.Errorf("pool %s: %s finalizer %s: %w", p.Name, verb, v1beta1.FinalizerPoolProtection, err)
}
