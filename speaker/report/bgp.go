package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// BGPSession is what the speaker knows of one BGP session it runs (one BGPPeer that
// selects this node), the input of BGPStatuses.
type BGPSession struct {
	// Peer is the BGPPeer's name.
	Peer string
	// Address is the peer's address.
	Address netip.Addr
	// State is the session's FSM state; "" is reported as no state.
	State v1beta1.BGPSessionState
	// EstablishedSince is when the session last became Established; reported only while
	// State is Established.
	EstablishedSince time.Time
	// NegotiatedHold and NegotiatedKeepalive are the timers agreed with the peer; reported
	// only while State is Established (where 0 means no keepalives).
	NegotiatedHold, NegotiatedKeepalive time.Duration
	// LastError is the session's last error; reported cut to 1024 characters.
	LastError string
	// BFDProfile is the BFDProfile of the session's BFD session; "" without BFD.
	BFDProfile string
	// BFDState is the BFD session's state; "" without BFD.
	BFDState v1beta1.BFDSessionState
	// BFDLastDownDiag is the diagnostic of the BFD session's last Up → Down, such as
	// "ControlDetectionTimeExpired"; BFDLastDown is when that happened (zero: never).
	BFDLastDownDiag string
	BFDLastDown     time.Time
	// Advertised are the paths advertised to the peer, in any order.
	Advertised []AdvertisedPath
	// Problems say what kept the session from being set up as its BGPPeer says on this
	// node (a missing password Secret, BFD profile or router ID); empty when none did.
	Problems []string
}

// AdvertisedPath is one path advertised to a peer.
type AdvertisedPath struct {
	Prefix  netip.Prefix
	NextHop netip.Addr // zero: not reported
	// Communities are standard communities, AA<<16 | NN.
	Communities []uint32
	// LargeCommunities are large communities (global admin, local 1, local 2).
	LargeCommunities [][3]uint32
	// LocalPref is sent when HasLocalPref.
	LocalPref    uint32
	HasLocalPref bool
	// LinkBandwidth, when above 0, is the link-bandwidth extended community's value in
	// bytes per second.
	LinkBandwidth float32
}

// BGPStatusUpdate is a status change of an existing BGPSessionStatus.
type BGPStatusUpdate struct {
	Old, New *v1beta1.BGPSessionStatus
}

// BGPStatusPlan is what to write.
type BGPStatusPlan struct {
	// Create: new objects, Status filled in (written through the status subresource after
	// the create, which drops it).
	Create []*v1beta1.BGPSessionStatus
	// Update: objects whose status changed; write New's status.
	Update []BGPStatusUpdate
	// Delete: this node's objects for peers it no longer runs a session to.
	Delete []*v1beta1.BGPSessionStatus
}

// Empty reports whether there is nothing to write.
func (p BGPStatusPlan) Empty() bool { return len(p.Create)+len(p.Update)+len(p.Delete) == 0 }

// Limits of the rendered status (the CRD's maxItems and maxLength).
const (
	maxLastError       = 1024
	maxCommunities     = 64
	maxConditionLength = 32768
)

// shortHash is the first 10 hex digits of the SHA-256 of s.
func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:5])
}

// BGPSessionName is the name of the BGPSessionStatus of (node, peer): "<node>.<peer>" when
// the node's name has no dot (so the first dot separates the two names and no two pairs
// share a name) and the whole fits in 253 characters. Otherwise it is the start of
// "<node>.<peer>", cut so that the whole fits, then "-" and 10 hex digits of a hash of both
// names. Both names are DNS subdomains (as every Node and BGPPeer name is), so the result
// is one too.
func BGPSessionName(node, peer string) string {
	const maxName = 253
	base := node + "." + peer
	if !strings.Contains(node, ".") && len(base) <= maxName {
		return base
	}
	suffix := "-" + shortHash(node+"\x00"+peer)
	if len(base) > maxName-len(suffix) {
		base = base[:maxName-len(suffix)]
	}
	return strings.TrimRight(base, ".-") + suffix
}

// LabelValue is the value of a label naming the object called name: the name itself when
// it fits a label value (63 characters), else its start, "-" and 10 hex digits of its hash.
// BGPSessionStatus objects carry LabelValue(node) and LabelValue(peer) in their
// loadstone.io/node and loadstone.io/peer labels; list this node's with
// loadstone.io/node=LabelValue(node).
func LabelValue(name string) string {
	const maxLabel = 63
	if len(name) <= maxLabel {
		return name
	}
	suffix := "-" + shortHash(name)
	return strings.TrimRight(name[:maxLabel-len(suffix)], ".-_") + suffix
}

// BGPStatuses decides the writes of this node's BGPSessionStatus objects: one per session
// in sessions (the first one of a peer, if a peer appears twice), owned by the Node
// (nodeUID), created when missing, updated only when its status really changes (a steady
// session writes nothing), and deleted when this node runs no session to its peer any
// more. existing may hold any BGPSessionStatus objects; only this node's (by label) are
// considered. now stamps condition transitions. An object whose owner reference names an
// older Node of the same name is left to the garbage collector.
func BGPStatuses(now time.Time, node string, nodeUID types.UID, sessions []BGPSession, existing []v1beta1.BGPSessionStatus) BGPStatusPlan {
	wants := map[string]*BGPSession{}
	var order []string
	for i := range sessions {
		name := BGPSessionName(node, sessions[i].Peer)
		if _, dup := wants[name]; !dup {
			wants[name] = &sessions[i]
			order = append(order, name)
		}
	}
	var out BGPStatusPlan
	mine := map[string]*v1beta1.BGPSessionStatus{}
	for i := range existing {
		st := &existing[i]
		if st.Labels[v1beta1.LabelStatusNode] != LabelValue(node) {
			continue
		}
		if _, ok := wants[st.Name]; !ok {
			out.Delete = append(out.Delete, st)
			continue
		}
		mine[st.Name] = st
	}
	slices.Sort(order)
	for _, name := range order {
		s := wants[name]
		status, cond := renderSession(node, s)
		cond.LastTransitionTime = metav1.NewTime(now)
		old := mine[name]
		if old == nil {
			st := &v1beta1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{
				Name:            name,
				Labels:          map[string]string{v1beta1.LabelStatusNode: LabelValue(node), v1beta1.LabelStatusPeer: LabelValue(s.Peer)},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node, UID: nodeUID}},
			}}
			st.Status = status
			meta.SetStatusCondition(&st.Status.Conditions, cond)
			out.Create = append(out.Create, st)
			continue
		}
		next := old.DeepCopy()
		status.Conditions = next.Status.Conditions // keeps the transition time of an unchanged condition
		meta.SetStatusCondition(&status.Conditions, cond)
		next.Status = status
		if !equality.Semantic.DeepEqual(old.Status, next.Status) {
			out.Update = append(out.Update, BGPStatusUpdate{Old: old, New: next})
		}
	}
	return out
}

// renderSession renders a session's status, without conditions, and its Configured
// condition (without a transition time).
func renderSession(node string, s *BGPSession) (v1beta1.BGPSessionStatusStatus, metav1.Condition) {
	st := v1beta1.BGPSessionStatusStatus{
		Node: node, Peer: s.Peer, SessionState: s.State,
		LastError:             truncate(s.LastError, maxLastError),
		BFDState:              s.BFDState,
		BFDProfile:            s.BFDProfile,
		BFDLastDownDiagnostic: s.BFDLastDownDiag,
		BFDLastDownTime:       apiTime(s.BFDLastDown),
	}
	if s.Address.IsValid() {
		st.PeerAddress = s.Address.String()
	}
	if s.State == v1beta1.BGPStateEstablished {
		st.EstablishedSince = apiTime(s.EstablishedSince)
		st.NegotiatedHoldTime = &metav1.Duration{Duration: s.NegotiatedHold}
		st.NegotiatedKeepaliveTime = &metav1.Duration{Duration: s.NegotiatedKeepalive}
	}
	st.AdvertisedCount = int32(min(len(s.Advertised), math.MaxInt32))
	paths := slices.Clone(s.Advertised)
	slices.SortFunc(paths, func(a, b AdvertisedPath) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()); c != 0 {
			return c
		}
		return a.NextHop.Compare(b.NextHop)
	})
	for _, p := range paths[:min(len(paths), v1beta1.MaxAdvertisedPaths)] {
		st.Advertised = append(st.Advertised, renderPath(p))
	}

	cond := metav1.Condition{Type: v1beta1.ConditionConfigured, Status: metav1.ConditionTrue,
		Reason: v1beta1.ReasonConfigured, Message: "the session is set up as its BGPPeer says"}
	if len(s.Problems) > 0 {
		problems := slices.Clone(s.Problems)
		slices.Sort(problems)
		cond.Status, cond.Reason = metav1.ConditionFalse, v1beta1.ReasonConfigurationProblem
		cond.Message = truncate(strings.Join(slices.Compact(problems), "; "), maxConditionLength)
	}
	return st, cond
}

func renderPath(p AdvertisedPath) v1beta1.AdvertisedPath {
	out := v1beta1.AdvertisedPath{Prefix: p.Prefix.String()}
	if p.NextHop.IsValid() {
		out.NextHop = p.NextHop.String()
	}
	std := slices.Compact(slices.Sorted(slices.Values(p.Communities)))
	for _, c := range std[:min(len(std), maxCommunities)] {
		out.Communities = append(out.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
	}
	large := slices.Clone(p.LargeCommunities)
	slices.SortFunc(large, func(a, b [3]uint32) int { return slices.Compare(a[:], b[:]) })
	large = slices.Compact(large)
	for _, c := range large[:min(len(large), maxCommunities)] {
		out.LargeCommunities = append(out.LargeCommunities, fmt.Sprintf("%d:%d:%d", c[0], c[1], c[2]))
	}
	if p.HasLocalPref {
		lp := int64(p.LocalPref)
		out.LocalPref = &lp
	}
	if p.LinkBandwidth > 0 {
		bw := int64(math.MaxInt64)
		if f := math.Round(float64(p.LinkBandwidth)); f < math.MaxInt64 {
			bw = int64(f)
		}
		out.LinkBandwidth = &bw
	}
	return out
}

// apiTime is t as the API stores it (whole seconds, UTC); nil for the zero time.
func apiTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	at := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &at
}

// truncate cuts s to at most n characters (runes), marking the cut with "...".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}
