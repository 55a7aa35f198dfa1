package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/observe"
	"github.com/loadstone-lb/loadstone/speaker/report"
)

// writeStatus applies a status plan; every write is idempotent (a repeat finds nothing to
// do), and a failed one is retried by the next sync.
func (a *Agent) writeStatus(ctx context.Context, p report.StatusPlan) error {
	var errs []error
	for _, st := range p.Delete {
		if err := a.cfg.Client.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete status %s/%s: %w", st.Namespace, st.Name, err))
		}
	}
	for _, st := range p.Collect {
		a.log.Info("deleting the status of a dead node whose IPs live nodes announce",
			"status", st.Namespace+"/"+st.Name, "node", st.Status.Node, "ips", st.Status.IPs)
		if err := a.cfg.Client.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
			a.statuses.CollectFailed(st)
			errs = append(errs, fmt.Errorf("delete dead node's status %s/%s: %w", st.Namespace, st.Name, err))
		}
	}
	for _, want := range p.Create {
		st := want.DeepCopy()
		err := a.cfg.Client.Create(ctx, st)
		switch {
		case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
			// The cache had not seen the namespace terminating yet; the Service goes with it.
			a.log.Debug("not creating a status in a terminating namespace", "status", want.Namespace+"/"+want.Name)
			continue
		case apierrors.IsAlreadyExists(err):
			if err := a.cfg.Client.Get(ctx, client.ObjectKeyFromObject(st), st); err != nil {
				errs = append(errs, fmt.Errorf("get status %s/%s: %w", st.Namespace, st.Name, err))
				continue
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("create status %s/%s: %w", st.Namespace, st.Name, err))
			continue
		}
		// The create ignored the status (a subresource); write it now.
		next := st.DeepCopy()
		next.Status = want.Status
		if err := a.cfg.Client.Status().Patch(ctx, next, client.MergeFrom(st)); err != nil {
			errs = append(errs, fmt.Errorf("write status %s/%s: %w", st.Namespace, st.Name, err))
		}
	}
	for _, u := range p.Update {
		// A merge patch of the status: no conflict on a stale resourceVersion from the cache.
		// NotFound: another node collected the object while this one was cut off; the
		// cache's delete event brings a sync that creates it again.
		if err := a.cfg.Client.Status().Patch(ctx, u.New, client.MergeFrom(u.Old)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("update status %s/%s: %w", u.New.Namespace, u.New.Name, err))
		}
	}
	return errors.Join(errs...)
}

// writeBGPStatus writes this node's BGPSessionStatus objects from what the BGP announcer
// reports. Without this node's Node object (no UID to own them) it writes nothing.
func (a *Agent) writeBGPStatus(ctx context.Context, now time.Time, snap *observe.Snapshot, r *BGPReport) error {
	if snap.SelfUID == "" {
		return nil
	}
	var list v1beta1.BGPSessionStatusList
	if err := a.cfg.Cache.List(ctx, &list, client.MatchingLabels{v1beta1.LabelStatusNode: report.LabelValue(a.cfg.NodeName)}); err != nil {
		return fmt.Errorf("list BGP session statuses: %w", err)
	}
	p := report.BGPStatuses(now, a.cfg.NodeName, snap.SelfUID, r.Sessions, list.Items)
	var errs []error
	for _, st := range p.Delete {
		if err := a.cfg.Client.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete BGP session status %s: %w", st.Name, err))
		}
	}
	for _, want := range p.Create {
		st := want.DeepCopy()
		err := a.cfg.Client.Create(ctx, st)
		switch {
		case apierrors.IsAlreadyExists(err):
			if err := a.cfg.Client.Get(ctx, client.ObjectKeyFromObject(st), st); err != nil {
				errs = append(errs, fmt.Errorf("get BGP session status %s: %w", st.Name, err))
				continue
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("create BGP session status %s: %w", st.Name, err))
			continue
		}
		next := st.DeepCopy()
		next.Status = want.Status
		if err := a.cfg.Client.Status().Patch(ctx, next, client.MergeFrom(st)); err != nil {
			errs = append(errs, fmt.Errorf("write BGP session status %s: %w", st.Name, err))
		}
	}
	for _, u := range p.Update {
		if err := a.cfg.Client.Status().Patch(ctx, u.New, client.MergeFrom(u.Old)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("update BGP session status %s: %w", u.New.Name, err))
		}
	}
	return errors.Join(errs...)
}
