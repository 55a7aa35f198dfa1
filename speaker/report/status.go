package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/observe"
)

// Applied is what the layer-2 announcer reported: the interfaces each IP is answered on,
// and the errors per IP.
type Applied struct {
	Interfaces map[netip.Addr][]string
	Errors     map[netip.Addr][]string
}

// StatusUpdate is a status change of an existing object.
type StatusUpdate struct {
	Old, New *v1beta1.ServiceL2Status
}

// StatusPlan is what to write.
type StatusPlan struct {
	// Create: this node's new objects, Status filled in (written after the create).
	Create []*v1beta1.ServiceL2Status
	// Update: this node's objects whose status changed.
	Update []StatusUpdate
	// Delete: this node's objects for Services it no longer announces.
	Delete []*v1beta1.ServiceL2Status
	// Collect: dead nodes' objects whose IPs are all announced again by live nodes.
	Collect []*v1beta1.ServiceL2Status
}

// Empty reports whether there is nothing to write.
func (p StatusPlan) Empty() bool {
	return len(p.Create)+len(p.Update)+len(p.Delete)+len(p.Collect) == 0
}

// StatusName is the name of the ServiceL2Status of (service, node).
func StatusName(service, node string) string {
	h := sha256.Sum256([]byte(node))
	return service + "-" + hex.EncodeToString(h[:5])
}

type collectKey struct {
	svc  types.NamespacedName
	node string
}

// Statuses is the status diff with its memory of collected objects.
type Statuses struct {
	collected map[collectKey]bool
}

// NewStatuses returns an empty Statuses.
func NewStatuses() *Statuses { return &Statuses{collected: map[collectKey]bool{}} }

// CollectFailed forgets that st was collected, so the next Diff tries again.
func (s *Statuses) CollectFailed(st *v1beta1.ServiceL2Status) {
	delete(s.collected, keyOf(st))
}

func keyOf(st *v1beta1.ServiceL2Status) collectKey {
	return collectKey{svc: types.NamespacedName{Namespace: st.Namespace, Name: st.Labels[v1beta1.LabelStatusService]},
		node: st.Labels[v1beta1.LabelStatusNode]}
}

type want struct {
	ips, ifaces []string
	failed      []string
	missing     bool
	absent      []v1beta1.MissingInterface // named interfaces this node lacks
}

// Diff decides the writes: this node's object per Service it announces (an IP counts
// when the announcer serves it; errors make the condition False), and the collection of
// a dead node's object once each IP it lists is announced again by this node or by
// another live node (a dual-stack Service's two IPs may fail over to two nodes). A dead
// node's object is collected once, not again while that node stays dead. now stamps
// condition transitions.
func (s *Statuses) Diff(now time.Time, snap *observe.Snapshot, plan announce.Plan, alive map[string]bool, desired map[netip.Addr][]string, applied Applied) StatusPlan {
	self := snap.Self
	wants := map[types.NamespacedName]*want{}
	get := func(k types.NamespacedName) *want {
		if wants[k] == nil {
			wants[k] = &want{}
		}
		return wants[k]
	}
	for _, o := range plan.Own {
		if _, ok := desired[o.IP]; !ok {
			continue // withheld for now
		}
		for _, k := range o.Services {
			w := get(k)
			if ifs, ok := applied.Interfaces[o.IP]; ok {
				w.ips = append(w.ips, o.IP.String())
				w.ifaces = append(w.ifaces, ifs...)
			}
			w.failed = append(w.failed, applied.Errors[o.IP]...)
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
	// Missing interfaces are listed in the objects this node writes anyway (an IP it
	// announces on other interfaces, or one it cannot announce at all), never in a new
	// object of their own: a withheld IP is not reported.
	for _, p := range plan.Problems {
		if p.Kind != announce.InterfaceMissing {
			continue
		}
		for _, k := range p.Services {
			if w := wants[k]; w != nil {
				w.absent = append(w.absent, v1beta1.MissingInterface{L2Advertisement: p.Advertisement, Interface: p.Interface})
			}
		}
	}
	// Forget collections for nodes that are back, whether or not they have an object now
	// (the same Service name may be reused later, and its status must be collectable).
	for k := range s.collected {
		if alive[k.node] {
			delete(s.collected, k)
		}
	}
	// IPs that live nodes other than this one publish, per Service.
	claimed := map[types.NamespacedName]map[string]bool{}
	for i := range snap.Statuses {
		st := &snap.Statuses[i]
		if k := keyOf(st); k.node != self && alive[k.node] {
			if claimed[k.svc] == nil {
				claimed[k.svc] = map[string]bool{}
			}
			for _, ip := range st.Status.IPs {
				claimed[k.svc][ip] = true
			}
		}
	}
	var out StatusPlan
	mine := map[types.NamespacedName]*v1beta1.ServiceL2Status{}
	for i := range snap.Statuses {
		st := &snap.Statuses[i]
		k := keyOf(st)
		if k.node == self {
			if _, ok := wants[k.svc]; !ok {
				out.Delete = append(out.Delete, st)
				continue
			}
			mine[k.svc] = st
			continue
		}
		if alive[k.node] || s.collected[k] {
			continue
		}
		w, ok := wants[k.svc]
		if !ok || len(w.ips) == 0 || len(st.Status.IPs) == 0 {
			continue
		}
		all := true
		for _, ip := range st.Status.IPs {
			if !slices.Contains(w.ips, ip) && !claimed[k.svc][ip] {
				all = false
			}
		}
		if all {
			s.collected[k] = true
			out.Collect = append(out.Collect, st)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(wants), func(x, y types.NamespacedName) int { return strings.Compare(x.String(), y.String()) }) {
		w := wants[k]
		slices.Sort(w.ips)
		w.ips = slices.Compact(w.ips)
		slices.Sort(w.ifaces)
		w.ifaces = slices.Compact(w.ifaces)
		slices.SortFunc(w.absent, func(a, b v1beta1.MissingInterface) int {
			return cmp.Or(strings.Compare(a.L2Advertisement, b.L2Advertisement), strings.Compare(a.Interface, b.Interface))
		})
		w.absent = slices.Compact(w.absent)
		cond := metav1.Condition{Type: v1beta1.ConditionAnnounced, Status: metav1.ConditionTrue,
			Reason: v1beta1.ReasonAnnounced, Message: "answering ARP/NDP", LastTransitionTime: metav1.NewTime(now)}
		var absent string
		if len(w.absent) > 0 {
			var named []string
			for _, m := range w.absent {
				named = append(named, fmt.Sprintf("%s (L2Advertisement %s)", m.Interface, m.L2Advertisement))
			}
			absent = "; named but missing on this node: " + strings.Join(named, ", ")
		}
		cond.Message += absent
		if len(w.failed) > 0 {
			cond.Status = metav1.ConditionFalse
			cond.Reason = v1beta1.ReasonAnnounceFailed
			if w.missing {
				cond.Reason = v1beta1.ReasonInterfaceMissing
			}
			cond.Message = strings.Join(w.failed, "; ") + absent
		}
		old := mine[k]
		if old == nil {
			svc, ok := snap.Services[k]
			if !ok || snap.Terminating[k.Namespace] {
				// The Service is gone (its next sync drops it), or goes with its
				// namespace, which accepts no new objects: nothing to report.
				continue
			}
			st := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{
				Namespace: k.Namespace, Name: StatusName(k.Name, self),
				Labels:          map[string]string{v1beta1.LabelStatusNode: self, v1beta1.LabelStatusService: k.Name},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: k.Name, UID: svc.UID}},
			}}
			st.Status = v1beta1.ServiceL2StatusStatus{Node: self, ServiceName: k.Name, IPs: w.ips, Interfaces: w.ifaces, MissingInterfaces: w.absent}
			meta.SetStatusCondition(&st.Status.Conditions, cond)
			out.Create = append(out.Create, st)
			continue
		}
		next := old.DeepCopy()
		next.Status.Node, next.Status.ServiceName = self, k.Name
		next.Status.IPs, next.Status.Interfaces, next.Status.MissingInterfaces = w.ips, w.ifaces, w.absent
		meta.SetStatusCondition(&next.Status.Conditions, cond)
		if !statusEqual(old.Status, next.Status) {
			out.Update = append(out.Update, StatusUpdate{Old: old, New: next})
		}
	}
	return out
}

func statusEqual(a, b v1beta1.ServiceL2StatusStatus) bool {
	if a.Node != b.Node || a.ServiceName != b.ServiceName || !slices.Equal(a.IPs, b.IPs) || !slices.Equal(a.Interfaces, b.Interfaces) ||
		!slices.Equal(a.MissingInterfaces, b.MissingInterfaces) || len(a.Conditions) != len(b.Conditions) {
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
