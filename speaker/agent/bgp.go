package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/bfd"
	"github.com/loadstone-lb/loadstone/speaker/bgp"
	"github.com/loadstone-lb/loadstone/speaker/report"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// BGPBackend is the part of bgp.Server the loop uses.
type BGPBackend interface {
	Apply(ctx context.Context, plan routes.Plan) error
	Sessions() []bgp.Session
	Problems() []routes.Problem
	ResetPeer(name, reason string) error
}

// BFDBackend is the part of bfd.Manager the loop uses.
type BFDBackend interface {
	Set(cfgs []bfd.SessionConfig) error
	Sessions() []bfd.Status
}

var (
	_ BGPBackend = (*bgp.Server)(nil)
	_ BFDBackend = (*bfd.Manager)(nil)
)

// BGP is the BGP announcer: it decides the node's BGP plan (package routes) from the
// snapshot, runs the BFD sessions the plan asks for and applies the plan to the embedded
// BGP server. Its report carries every session's state, read back from the server and
// the BFD manager, for the BGPSessionStatus objects and Events.
type BGP struct {
	Server BGPBackend
	BFD    BFDBackend
	Logger *slog.Logger

	mu sync.Mutex
	// last is the plan applied last (routes.Compute keeps a peer's previous version when
	// its password Secret disappears); peers maps a peer address to its BGPPeer's name.
	last  routes.Plan
	peers map[netip.Addr]string
}

var _ Announcer = (*BGP)(nil)

// Name implements Announcer.
func (*BGP) Name() string { return "bgp" }

// Apply implements Announcer.
func (b *BGP) Apply(ctx context.Context, d Decision) Report {
	b.mu.Lock()
	defer b.mu.Unlock()
	var rep Report
	bfdByAddr := b.bfdSessions()
	bfdUp := map[string]bool{}
	for _, p := range b.last.Peers {
		if p.BFD != nil && bfdByAddr[p.Address].State == bfd.StateUp {
			bfdUp[p.Name] = true
		}
	}
	in := routes.FromSnapshot(d.Snapshot, d.Alive, bfdUp, &b.last)
	in.Carried = d.Carried // announce only when the dataplane carries the IP
	plan := routes.Compute(in)

	// BFD first: a new peer's BFD session starts with its BGP session.
	var cfgs []bfd.SessionConfig
	peers := map[netip.Addr]string{}
	for _, p := range plan.Peers {
		peers[p.Address] = p.Name
		if p.BFD == nil {
			continue
		}
		cfgs = append(cfgs, bfd.SessionConfig{Peer: p.Address, Local: p.SourceAddress,
			DesiredMinTx: p.BFD.TransmitInterval, RequiredMinRx: p.BFD.ReceiveInterval,
			DetectMult: p.BFD.DetectMultiplier, Passive: p.BFD.PassiveMode, MinimumTTL: p.BFD.MinimumTTL})
	}
	if b.BFD != nil {
		if err := b.BFD.Set(cfgs); err != nil {
			rep.Errors = append(rep.Errors, fmt.Errorf("bfd: %w", err))
		}
	} else if len(cfgs) > 0 {
		rep.Errors = append(rep.Errors, fmt.Errorf("bfd: %d peers ask for BFD, but this speaker runs none", len(cfgs)))
	}
	if err := b.Server.Apply(ctx, plan); err != nil {
		rep.Errors = append(rep.Errors, err)
	}
	b.last, b.peers = plan, peers

	// The decision's problems and the server's (a router ID change waiting for a restart):
	// both reach the status of their peer and an Event.
	all := append(slices.Clone(plan.Problems), b.Server.Problems()...)
	problems := map[string][]string{}
	for _, pr := range all {
		if pr.Kind == routes.KindBGPPeer {
			problems[pr.Name] = append(problems[pr.Name], pr.Message)
		}
	}
	rep.BGP = &BGPReport{Problems: all}
	bfdByAddr = b.bfdSessions() // again: Set may have just created or removed sessions
	sessions := map[string]bgp.Session{}
	for _, s := range b.Server.Sessions() {
		sessions[s.Peer] = s
	}
	for _, p := range plan.Peers {
		s := sessions[p.Name]
		out := report.BGPSession{Peer: p.Name, Address: p.Address, State: v1beta1.BGPSessionState(s.State),
			EstablishedSince: s.EstablishedSince, NegotiatedHold: s.HoldTime, NegotiatedKeepalive: s.KeepaliveTime,
			LastError: s.LastError, Problems: problems[p.Name]}
		if s.State == bgp.StateUnknown || s.State == "" {
			out.State = ""
		}
		if p.BFD != nil {
			out.BFDProfile = p.BFD.Profile
			if st, ok := bfdByAddr[p.Address]; ok {
				out.BFDState = v1beta1.BFDSessionState(st.State.String())
				if !st.LastDown.IsZero() {
					out.BFDLastDown = st.LastDown
					out.BFDLastDownDiag = DiagName(st.LastDownDiag)
				}
			}
		}
		for _, a := range s.Advertised {
			out.Advertised = append(out.Advertised, report.AdvertisedPath{Prefix: a.Prefix, NextHop: a.NextHop,
				Communities: a.Communities, LargeCommunities: a.LargeCommunities, LocalPref: a.LocalPref,
				HasLocalPref: a.HasLocalPref, LinkBandwidth: a.LinkBandwidth})
		}
		rep.BGP.Sessions = append(rep.BGP.Sessions, out)
	}
	rep.BGP.Announced = bgpAnnounced(in, plan, sessions)
	return rep
}

// bfdSessions reads the BFD sessions by peer address (none without a BFD manager).
func (b *BGP) bfdSessions() map[netip.Addr]bfd.Status {
	out := map[netip.Addr]bfd.Status{}
	if b.BFD != nil {
		for _, st := range b.BFD.Sessions() {
			out[st.Peer] = st
		}
	}
	return out
}

// OnBFDChange is the BFD manager's OnChange: a session that goes Down from Up tears its
// BGP session down at once (RFC 5882 §3.2), without waiting for the loop; every change
// then asks the loop for a sync (status, Events, strict mode).
func (b *BGP) OnBFDChange(c bfd.Change, trigger func()) {
	if c.Old == bfd.StateUp && c.New != bfd.StateUp {
		b.mu.Lock()
		name, ok := b.peers[c.Peer]
		b.mu.Unlock()
		if ok {
			reason := "BFD session down: " + c.Diag.String()
			if err := b.Server.ResetPeer(name, reason); err != nil && b.Logger != nil {
				b.Logger.Warn("resetting the BGP session after BFD went down failed", "peer", name, "err", err)
			} else if b.Logger != nil {
				b.Logger.Info("BFD went down; BGP session reset", "peer", name, "diag", c.Diag.String())
			}
		}
	}
	trigger()
}

// DiagName is the CamelCase name of a BFD diagnostic, as BGPSessionStatus shows it.
func DiagName(d bfd.Diag) string {
	switch d {
	case bfd.DiagNone:
		return "None"
	case bfd.DiagControlDetectionExpired:
		return "ControlDetectionTimeExpired"
	case bfd.DiagEchoFailed:
		return "EchoFunctionFailed"
	case bfd.DiagNeighborDown:
		return "NeighborSignaledSessionDown"
	case bfd.DiagForwardingReset:
		return "ForwardingPlaneReset"
	case bfd.DiagPathDown:
		return "PathDown"
	case bfd.DiagConcatenatedPathDown:
		return "ConcatenatedPathDown"
	case bfd.DiagAdminDown:
		return "AdministrativelyDown"
	case bfd.DiagReverseConcatPathDown:
		return "ReverseConcatenatedPathDown"
	}
	return fmt.Sprintf("Diag%d", uint8(d))
}

// BGPReport is what the BGP announcer applied: every session it runs, and the problems
// of the decision.
type BGPReport struct {
	Sessions []report.BGPSession
	Problems []routes.Problem
	// Announced are the LB IPs advertised to at least one Established peer, with their
	// Services (loadstone_speaker_announced).
	Announced map[netip.Addr][]types.NamespacedName
}
