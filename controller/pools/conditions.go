package pools

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/ipam"
)

// objKey identifies one configuration object (all kinds are cluster-scoped).
type objKey struct{ kind, name string }

// configObject is one listed configuration object and its model kind.
type configObject struct {
	kind string
	obj  client.Object
}

// The condition that earlier versions set on BGPPeer, BGPAdvertisement and Community while
// BGP was not implemented. This version never sets it and deletes it where it is still
// found (desiredConditions), so that an upgraded cluster does not keep saying that BGP
// objects are not acted on.
const (
	// ConditionProgrammed is the type of the obsolete condition.
	ConditionProgrammed = "Programmed"
	// ReasonNotImplemented is its reason; only a Programmed condition with this reason is
	// deleted (one that something else sets for its own purpose is left alone).
	ReasonNotImplemented = "NotImplemented"
)

// obsolete reports whether c is a condition that earlier versions of the controller set
// and this one deletes.
func obsolete(c metav1.Condition) bool {
	return c.Type == ConditionProgrammed && c.Reason == ReasonNotImplemented
}

// desiredConditions returns the conditions an object should carry: the ones it has, less
// the obsolete ones, with each of set put in (a condition whose status is unchanged keeps
// its lastTransitionTime). have is not modified.
func desiredConditions(have, set []metav1.Condition) []metav1.Condition {
	want := slices.DeleteFunc(slices.Clone(have), obsolete)
	for _, c := range set {
		meta.SetStatusCondition(&want, c)
	}
	return want
}

// configKind describes a configuration kind other than IPAddressPool (whose status also
// carries usage counts, so flush writes it itself).
type configKind struct {
	kind string
	list func() client.ObjectList
	// conditions returns the object's status conditions; nil for a kind without a status
	// (its problems get Events only).
	conditions func(client.Object) []metav1.Condition
}

// otherKinds returns the non-pool configuration kinds that model.Build validates.
func otherKinds() []configKind {
	return []configKind{
		{model.KindL2Advertisement, func() client.ObjectList { return &v1beta1.L2AdvertisementList{} },
			func(o client.Object) []metav1.Condition { return o.(*v1beta1.L2Advertisement).Status.Conditions }},
		{model.KindBGPPeer, func() client.ObjectList { return &v1beta1.BGPPeerList{} },
			func(o client.Object) []metav1.Condition { return o.(*v1beta1.BGPPeer).Status.Conditions }},
		{model.KindBGPAdvertisement, func() client.ObjectList { return &v1beta1.BGPAdvertisementList{} },
			func(o client.Object) []metav1.Condition { return o.(*v1beta1.BGPAdvertisement).Status.Conditions }},
		{model.KindCommunity, func() client.ObjectList { return &v1beta1.CommunityList{} },
			func(o client.Object) []metav1.Condition { return o.(*v1beta1.Community).Status.Conditions }},
		{model.KindBFDProfile, func() client.ObjectList { return &v1beta1.BFDProfileList{} }, nil},
	}
}

// listObjects lists one kind and returns its items as pointers into the list.
func listObjects(ctx context.Context, c client.Client, list client.ObjectList) ([]client.Object, error) {
	if err := c.List(ctx, list); err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(items))
	for _, it := range items {
		o, ok := it.(client.Object)
		if !ok {
			return nil, fmt.Errorf("list item %T is not an object", it)
		}
		out = append(out, o)
	}
	return out, nil
}

// snapshot lists every configuration object: the model.Snapshot for Build (without
// Previous) and the same objects with their kinds.
func (r *Reconciler) snapshot(ctx context.Context) (model.Snapshot, []configObject, error) {
	var s model.Snapshot
	var pools v1beta1.IPAddressPoolList
	if err := r.opts.Client.List(ctx, &pools); err != nil {
		return s, nil, err
	}
	s.Pools = pools.Items
	objs := make([]configObject, 0, len(pools.Items))
	for i := range pools.Items {
		objs = append(objs, configObject{model.KindIPAddressPool, &pools.Items[i]})
	}
	for _, k := range otherKinds() {
		items, err := listObjects(ctx, r.opts.Client, k.list())
		if err != nil {
			return s, nil, fmt.Errorf("list %s: %w", k.kind, err)
		}
		for _, o := range items {
			objs = append(objs, configObject{k.kind, o})
			if err := s.Add(o); err != nil {
				return s, nil, err
			}
		}
	}
	return s, objs, nil
}

// judge computes every object's conditions after a Build, stores them for the status writer and emits one Warning Event per object and distinct problem message.
func (r *Reconciler) judge(cfg *model.Config, problems []model.Problem, objs []configObject) {
	conds := make(map[objKey][]metav1.Condition, len(objs))
	reported := map[objKey]string{}
	var events []configObject
	r.mu.Lock()
	for _, o := range objs {
		k := objKey{o.kind, o.obj.GetName()}
		c := model.ValidCondition(cfg, problems, o.kind, k.name, o.obj.GetGeneration())
		conds[k] = []metav1.Condition{c}
		if mp := cfg.Pools[k.name]; o.kind == model.KindIPAddressPool && mp != nil {
			conds[k] = append(conds[k], excludedCondition(mp, o.obj.GetGeneration()))
		}
		if c.Status == metav1.ConditionTrue {
			continue
		}
		if r.problems[k] != c.Message {
			events = append(events, o)
		}
		reported[k] = c.Message
	}
	r.conds, r.problems = conds, reported
	for k := range r.written {
		if _, ok := conds[k]; !ok {
			delete(r.written, k) // deleted object: a new one of that name starts afresh
		}
	}
	r.mu.Unlock()
	for _, o := range events {
		c := conds[objKey{o.kind, o.obj.GetName()}][0]
		r.opts.Recorder.Eventf(o.obj, nil, corev1.EventTypeWarning, EventInvalidConfiguration, "Validate", "%s", c.Message)
		r.opts.Log.Info("invalid configuration object", "kind", o.kind, "name", o.obj.GetName(), "reason", c.Reason, "message", c.Message)
	}
}

// flushConditions writes the conditions of every non-pool object whose status differs from what it should be, with a merge patch of status.conditions.
func (r *Reconciler) flushConditions(ctx context.Context) error {
	var firstErr error
	for _, k := range otherKinds() {
		if k.conditions == nil {
			continue
		}
		items, err := listObjects(ctx, r.opts.Client, k.list())
		if err != nil {
			return fmt.Errorf("list %s: %w", k.kind, err)
		}
		for _, o := range items {
			key := objKey{k.kind, o.GetName()}
			r.mu.Lock()
			conds, hasCond := r.conds[key]
			written, wasWritten := r.written[key]
			r.mu.Unlock()
			if !hasCond {
				continue // not judged yet
			}
			have := k.conditions(o)
			want := desiredConditions(have, conds)
			if equality.Semantic.DeepEqual(want, have) || (wasWritten && equality.Semantic.DeepEqual(want, written)) {
				continue
			}
			data, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": want}})
			if err != nil {
				return err
			}
			if err := r.opts.Client.Status().Patch(ctx, o, client.RawPatch(types.MergePatchType, data)); err != nil {
				r.opts.Metrics.conditionErrors.WithLabelValues(k.kind).Inc()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s %s: %w", k.kind, o.GetName(), err)
				}
				continue
			}
			r.opts.Metrics.conditionWrites.WithLabelValues(k.kind).Inc()
			r.mu.Lock()
			r.written[key] = want
			r.mu.Unlock()
		}
	}
	return firstErr
}

// maxListed caps the entries a condition message or Event lists.
const maxListed = 10

// excludedCondition is the AddressesExcluded condition of a pool in force: the
// special-purpose addresses the allocator never hands out (ipam.Excluded).
func excludedCondition(p *model.Pool, gen int64) metav1.Condition {
	ex := ipam.Excluded(p)
	if len(ex) == 0 {
		return metav1.Condition{Type: v1beta1.ConditionAddressesExcluded, Status: metav1.ConditionFalse, ObservedGeneration: gen,
			Reason: v1beta1.ReasonNoneExcluded, Message: "no special-purpose address in the pool"}
	}
	items := make([]string, len(ex))
	for i, e := range ex {
		items[i] = e.String()
	}
	return metav1.Condition{Type: v1beta1.ConditionAddressesExcluded, Status: metav1.ConditionTrue, ObservedGeneration: gen,
		Reason:  v1beta1.ReasonSpecialPurpose,
		Message: "never handed out and not counted (special-purpose): " + capList(items, maxListed)}
}

// capList joins at most n items and says how many more there are.
func capList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
