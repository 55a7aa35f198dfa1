package report

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// BGP Event reasons.
const (
	EventBGPSessionUp   = "BGPSessionUp"
	EventBGPSessionDown = "BGPSessionDown"
	EventBFDDown        = "BFDSessionDown"
	EventBFDUp          = "BFDSessionUp"
	EventBGPProblem     = "BGPConfigProblem"
	EventBGPSessionErr  = "BGPSessionFailing"
)

// BGPEvents is the BGP Event diff with its memory: each session's state and each problem
// at the last step.
type BGPEvents struct {
	sessions map[string]BGPSession
	problems map[routes.Problem]bool
}

// NewBGPEvents returns an empty BGPEvents.
func NewBGPEvents() *BGPEvents {
	return &BGPEvents{sessions: map[string]BGPSession{}, problems: map[routes.Problem]bool{}}
}

// Diff returns the Events for what changed since the last call, on this node (self):
// a BGP session reaching or leaving Established, a BFD session going Down from Up or
// coming Up, with the reason, and each problem of the decision once while it lasts. A
// session seen for the first time raises an Event only when it is Established (a fresh
// speaker does not report every session's Idle start).
func (e *BGPEvents) Diff(self string, sessions []BGPSession, problems []routes.Problem) []Event {
	var out []Event
	cur := map[string]BGPSession{}
	for _, s := range sessions {
		cur[s.Peer] = s
		prev, seen := e.sessions[s.Peer]
		up := s.State == v1beta1.BGPStateEstablished
		wasUp := seen && prev.State == v1beta1.BGPStateEstablished
		switch {
		case up && !wasUp:
			out = append(out, Event{Peer: s.Peer, Type: corev1.EventTypeNormal, Reason: EventBGPSessionUp, Action: "Peer",
				Note: fmt.Sprintf("node %s: BGP session to %s established", self, s.Address)})
		case !up && wasUp:
			note := fmt.Sprintf("node %s: BGP session to %s went down (now %s)", self, s.Address, orNone(string(s.State)))
			if s.LastError != "" {
				note += ": " + s.LastError
			}
			out = append(out, Event{Peer: s.Peer, Type: corev1.EventTypeWarning, Reason: EventBGPSessionDown, Action: "Peer", Note: note})
		case !up && s.LastError != "" && (!seen || prev.LastError != s.LastError):
			// Not up, with a new error: an unreachable peer, a wrong ASN or password.
			out = append(out, Event{Peer: s.Peer, Type: corev1.EventTypeWarning, Reason: EventBGPSessionErr, Action: "Peer",
				Note: fmt.Sprintf("node %s: BGP session to %s not established (%s): %s", self, s.Address, orNone(string(s.State)), s.LastError)})
		}
		bfdUp := s.BFDState == v1beta1.BFDStateUp
		bfdWasUp := seen && prev.BFDState == v1beta1.BFDStateUp
		switch {
		case bfdUp && !bfdWasUp && seen:
			out = append(out, Event{Peer: s.Peer, Type: corev1.EventTypeNormal, Reason: EventBFDUp, Action: "Detect",
				Note: fmt.Sprintf("node %s: BFD session to %s up (profile %s)", self, s.Address, s.BFDProfile)})
		case !bfdUp && bfdWasUp:
			note := fmt.Sprintf("node %s: BFD session to %s went down", self, s.Address)
			if s.BFDLastDownDiag != "" {
				note += " (" + s.BFDLastDownDiag + ")"
			}
			out = append(out, Event{Peer: s.Peer, Type: corev1.EventTypeWarning, Reason: EventBFDDown, Action: "Detect", Note: note})
		}
	}
	e.sessions = cur
	now := map[routes.Problem]bool{}
	for _, p := range problems {
		now[p] = true
		if e.problems[p] {
			continue
		}
		ev := Event{Type: corev1.EventTypeWarning, Reason: EventBGPProblem, Action: "Configure",
			Note: fmt.Sprintf("node %s: %s: %s", self, p.Reason, p.Message)}
		switch p.Kind {
		case routes.KindBGPPeer:
			ev.Peer = p.Name
		case routes.KindService:
			ns, name, ok := strings.Cut(p.Name, "/")
			if !ok {
				continue
			}
			ev.Service = types.NamespacedName{Namespace: ns, Name: name}
		default:
			continue // advertisement-level problems: the controller's conditions say them
		}
		out = append(out, ev)
	}
	e.problems = now
	slices.SortStableFunc(out, func(a, b Event) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}

func orNone(s string) string {
	if s == "" {
		return "no state"
	}
	return s
}
