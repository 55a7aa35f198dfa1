package report

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/heal"
	"github.com/loadstone-lb/loadstone/speaker/observe"
)

// Event reasons.
const (
	EventAnnouncerChanged = "L2AnnouncerChanged"
	EventDuplicateOwner   = "L2DuplicateOwner"
	EventInterfaceMissing = "L2InterfaceMissing"
	EventNoInterface      = "L2NoUsableInterface"
	EventIPNotInPool      = "L2IPNotInPool"
)

// Event is one Event to emit. It regards a Service, or an L2Advertisement when
// Advertisement is set, or a BGPPeer when Peer is set.
type Event struct {
	Service       types.NamespacedName
	Advertisement string
	Peer          string
	Type          string
	Reason        string
	Action        string
	Note          string
}

// Events is the Event diff with its memory: the winner of each IP at the last step, and
// the problems then.
type Events struct {
	winners  map[netip.Addr]string
	problems map[string]bool
}

// NewEvents returns an empty Events.
func NewEvents() *Events {
	return &Events{winners: map[netip.Addr]string{}, problems: map[string]bool{}}
}

// Diff returns the Events for what changed since the last call: this node starting or
// stopping to announce an IP (applied says what layer 2 really serves), and each problem
// once while it lasts.
func (e *Events) Diff(snap *observe.Snapshot, plan announce.Plan, applied Applied) []Event {
	self := snap.Self
	var out []Event
	winners := map[netip.Addr]string{}
	for _, ip := range sortedIPs(plan.Elections) {
		el := plan.Elections[ip]
		winners[ip] = el.Result.Winner
		prev, seen := e.winners[ip]
		if seen && prev == el.Result.Winner {
			continue
		}
		switch {
		case el.Result.Winner == self:
			ifs, ok := applied.Interfaces[ip]
			if !ok {
				continue
			}
			for _, k := range el.Services {
				was := prev
				if !seen {
					// No election of ours to compare with (this agent just started, or saw
					// the IP first now): the published status says who announced it.
					was = ""
					for _, n := range snap.Publishers(k, ip) {
						if n != self {
							was = n
							break
						}
					}
				}
				if was == "" {
					was = "none"
				}
				out = append(out, Event{Service: k, Type: corev1.EventTypeNormal, Reason: EventAnnouncerChanged, Action: "Announce",
					Note: fmt.Sprintf("node %s announces %s on %s (previously: %s)", self, ip, strings.Join(ifs, ","), was)})
			}
		case prev == self:
			now := el.Result.Winner
			if now == "" {
				now = "none (" + el.Result.Status.String() + ")"
			}
			for _, k := range el.Services {
				out = append(out, Event{Service: k, Type: corev1.EventTypeNormal, Reason: EventAnnouncerChanged, Action: "Withdraw",
					Note: fmt.Sprintf("node %s stopped announcing %s; now: %s", self, ip, now)})
			}
		}
	}
	e.winners = winners

	current := map[string]bool{}
	// Each node's own missing interfaces, on the advertisement, whether or not it is
	// elected for anything: every speaker reports what it lacks.
	for _, m := range plan.Missing {
		key := fmt.Sprintf("missing/%s/%s", m.Advertisement, m.Interface)
		current[key] = true
		if e.problems[key] {
			continue
		}
		out = append(out, Event{Advertisement: m.Advertisement, Type: corev1.EventTypeWarning, Reason: EventInterfaceMissing, Action: "Announce",
			Note: fmt.Sprintf("L2Advertisement %s names interface %q, which node %s does not have; the node answers on its other interfaces only", m.Advertisement, m.Interface, self)})
	}
	for _, p := range plan.Problems {
		var note string
		if p.Kind == announce.InterfaceMissing {
			// The note says what was decided for the IP, so it never contradicts the
			// NoUsableInterface Event of the same plan; it is part of the key, so a
			// change of that decision (the other advertisement went away) is told too.
			note = fmt.Sprintf("L2Advertisement %s names interface %q, which node %s does not have; %s", p.Advertisement, p.Interface, self, decided(self, p.IP, plan))
		}
		key := fmt.Sprintf("%d/%s/%s/%s/%s", p.Kind, p.Advertisement, p.Interface, p.IP, note)
		current[key] = true
		if e.problems[key] {
			continue
		}
		switch p.Kind {
		case announce.InterfaceMissing:
			for _, k := range p.Services {
				out = append(out, Event{Service: k, Type: corev1.EventTypeWarning, Reason: EventInterfaceMissing, Action: "Announce", Note: note})
			}
		case announce.NoUsableInterface:
			for _, k := range p.Services {
				out = append(out, Event{Service: k, Type: corev1.EventTypeWarning, Reason: EventNoInterface, Action: "Announce",
					Note: fmt.Sprintf("node %s is elected for %s but has none of the interfaces its L2Advertisements name; not announced", self, p.IP)})
			}
		case announce.IPNotInPool:
			for _, k := range p.Services {
				out = append(out, Event{Service: k, Type: corev1.EventTypeWarning, Reason: EventIPNotInPool, Action: "Announce",
					Note: fmt.Sprintf("%s belongs to no IPAddressPool; not announced", p.IP)})
			}
		}
	}
	e.problems = current
	return out
}

// decided says what the plan does with ip on this node: the interfaces it announces it on,
// or that it does not announce it.
func decided(self string, ip netip.Addr, plan announce.Plan) string {
	for _, o := range plan.Own {
		if o.IP != ip {
			continue
		}
		if len(o.Interfaces) == 0 {
			return fmt.Sprintf("%s is announced on the interface holding the route to it (another L2Advertisement names no interface)", ip)
		}
		return fmt.Sprintf("%s is announced on %s", ip, strings.Join(o.Interfaces, ","))
	}
	return fmt.Sprintf("%s is not announced by node %s: none of the interfaces named for it exists there", ip, self)
}

// ConflictEvents returns the Warning Events for duplicate-owner decisions taken (not
// rate-limited), on the Services of the IP.
func ConflictEvents(self string, decisions []heal.ConflictDecision, plan announce.Plan) []Event {
	var out []Event
	for _, d := range decisions {
		el, ok := plan.Elections[d.IP]
		if d.RateLimited || !ok {
			continue
		}
		other := d.Other
		if other == "" {
			other = "a host that is not a speaker"
		}
		for _, k := range el.Services {
			out = append(out, Event{Service: k, Type: corev1.EventTypeWarning, Reason: EventDuplicateOwner, Action: d.Action.String(),
				Note: fmt.Sprintf("%s is answered by node %s (%s) and by %s (%s) on %s; tie-break: node %s %ss",
					d.IP, self, d.Ours, other, d.Theirs, d.Interface, self, strings.ToLower(d.Action.String()))})
		}
	}
	return out
}

func sortedIPs[V any](m map[netip.Addr]V) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for ip := range m {
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
