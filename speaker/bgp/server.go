package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// ErrClosed is returned by Apply and ResetPeer after Close.
var ErrClosed = errors.New("bgp: server closed")

// Config configures New.
type Config struct {
	// Logger receives this package's and gobgp's logs (nil: slog.Default()).
	Logger *slog.Logger
	// Registerer registers the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// ListenPort is the port gobgp accepts sessions on; 0 or -1: it never listens and
	// only connects out (the default; routers do not dial nodes).
	ListenPort int32
	// OnChange, when not nil, is called after any session's state changes, from gobgp's
	// event goroutine and without this package's locks held: it may call Sessions.
	OnChange func()
}

// Server applies BGP plans to one embedded gobgp server. It is safe for concurrent use.
type Server struct {
	log        *slog.Logger
	logs       *logAdapter
	m          *metrics
	onChange   func()
	listenPort int32
	bgp        *server.BgpServer

	mu          sync.Mutex // serializes Apply, ResetPeer and Close
	running     bool       // StartBgp succeeded
	started     bool       // start completed
	closed      bool
	routerID    netip.Addr
	problems    []routes.Problem
	peers       map[string]routes.Peer   // by gobgp key (address): as configured in gobgp
	groups      map[string][]exportGroup // by gobgp key: what its export policy accepts
	policies    map[string]policyNames   // by gobgp key: its export policy's objects
	rib         map[netip.Prefix]uint8   // the global RIB's paths and their origin (version)
	gen         uint64                   // last policy generation used
	dirty       bool                     // an Apply failed: rebuild policies, collect garbage
	watchCancel context.CancelFunc       // stops the peer event watcher

	stateMu sync.Mutex              // guards the fields below (read by Sessions and the event callback)
	names   map[string]string       // gobgp key → peer name, for every configured peer
	states  map[string]State        // gobgp key → last state seen by the watcher
	backoff map[string]*peerBackoff // gobgp key → consecutive failures and the hold in force
	stopped bool                    // the watcher's callback ignores events
}

// New creates the gobgp server (not yet started: the first Apply with a router ID starts
// it). Call Close before the process exits.
func New(cfg Config) *Server {
	l := cfg.Logger
	if l == nil {
		l = slog.Default()
	}
	port := cfg.ListenPort
	if port == 0 {
		port = -1
	}
	logs := newLogAdapter(l)
	s := &Server{
		log:        l,
		logs:       logs,
		m:          newMetrics(cfg.Registerer),
		onChange:   cfg.OnChange,
		listenPort: port,
		bgp:        server.NewBgpServer(server.LoggerOption(logs)),
		peers:      map[string]routes.Peer{},
		groups:     map[string][]exportGroup{},
		policies:   map[string]policyNames{},
		rib:        map[netip.Prefix]uint8{},
		names:      map[string]string{},
		states:     map[string]State{},
		backoff:    map[string]*peerBackoff{},
	}
	logs.onFailure = s.onFailure
	go s.bgp.Serve()
	return s
}

// Problems are what kept part of the last applied plan from taking effect (for example a
// router ID change that needs a restart).
func (s *Server) Problems() []routes.Problem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.problems)
}

// start starts gobgp with the router ID, its global import and export policies, and the
// peer event watcher. Each step is done once: a start that failed halfway resumes.
func (s *Server) start(ctx context.Context, routerID netip.Addr) error {
	if !s.running {
		err := s.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
			Asn: globalASN, RouterId: routerID.String(), ListenPort: s.listenPort,
		}})
		if err != nil {
			return fmt.Errorf("start gobgp: %w", err)
		}
		s.running = true
		s.routerID = routerID
	}
	// Import: keep only our own paths. Routers' paths would otherwise enter the global RIB,
	// compete with ours for best path and be offered to the export policies.
	importPolicy := namePrefix + "import"
	exists := false
	if err := s.bgp.ListPolicy(ctx, &api.ListPolicyRequest{Name: importPolicy}, func(*api.Policy) { exists = true }); err != nil {
		return fmt.Errorf("list policies: %w", err)
	}
	if !exists {
		if err := s.bgp.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{
			Name: importPolicy,
			Statements: []*api.Statement{{
				Name:       namePrefix + "import-local",
				Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
				Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
			}},
		}}); err != nil {
			return fmt.Errorf("add import policy: %w", err)
		}
	}
	if err := s.bgp.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: globalTable, Direction: api.PolicyDirection_IMPORT,
		Policies: []*api.Policy{{Name: importPolicy}}, DefaultAction: api.RouteAction_REJECT,
	}}); err != nil {
		return fmt.Errorf("assign import policy: %w", err)
	}
	if err := s.assignExport(ctx, nil); err != nil {
		return err
	}
	if s.watchCancel == nil {
		wctx, cancel := context.WithCancel(context.Background())
		if err := s.bgp.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, s.onEvent); err != nil {
			cancel()
			return fmt.Errorf("watch peer events: %w", err)
		}
		s.watchCancel = cancel
	}
	s.started = true
	s.log.Info("BGP speaker started", "routerID", s.routerID)
	return nil
}

// assignExport makes the global export assignment the given policies, default REJECT.
func (s *Server) assignExport(ctx context.Context, names []string) error {
	pa := &api.PolicyAssignment{Name: globalTable, Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_REJECT}
	for _, n := range names {
		pa.Policies = append(pa.Policies, &api.Policy{Name: n})
	}
	if err := s.bgp.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: pa}); err != nil {
		return fmt.Errorf("assign export policies: %w", err)
	}
	return nil
}

// onEvent is gobgp's peer event callback: count the transition, call OnChange.
func (s *Server) onEvent(r *api.WatchEventResponse) {
	ev := r.GetPeer()
	if ev == nil || ev.Type != api.WatchEventResponse_PeerEvent_STATE || ev.Peer.GetState() == nil {
		return
	}
	addr := ev.Peer.State.NeighborAddress
	st := stateName(ev.Peer.State.SessionState)
	s.stateMu.Lock()
	if s.stopped {
		s.stateMu.Unlock()
		return
	}
	name, known := s.names[addr]
	prev := s.states[addr]
	s.states[addr] = st
	if st == StateEstablished {
		s.resetBackoffLocked(addr)
	}
	s.stateMu.Unlock()
	if prev == st {
		return
	}
	if known {
		s.m.transitions.WithLabelValues(name, string(st)).Inc()
		up := 0.0
		if st == StateEstablished {
			up = 1
		}
		s.m.sessionUp.WithLabelValues(name).Set(up)
	}
	s.log.Info("BGP session state", "peer", name, "address", addr, "from", string(prev), "to", string(st))
	if s.onChange != nil {
		s.onChange()
	}
}

// Apply makes gobgp run the plan's sessions and advertise its paths, changing only what
// differs from the last Apply: peers are added, updated in place, re-created (only for
// changes the protocol cannot make on a running session) or deleted; paths are added to
// and withdrawn from the global RIB; per-peer export policies change and the peer gets a
// soft reset out (a route refresh from our side, not a session reset). On error the next
// Apply repairs what this one left half done.
func (s *Server) Apply(ctx context.Context, plan routes.Plan) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t0 := time.Now()
	defer func() {
		s.m.applyTime.Observe(time.Since(t0).Seconds())
		if err != nil {
			s.m.applyErrors.Inc()
			s.dirty = true
		}
	}()
	if s.closed {
		return ErrClosed
	}
	var problems []routes.Problem
	if !s.started {
		if !s.running && !plan.RouterID.IsValid() {
			s.problems = []routes.Problem{{Kind: "Speaker", Name: "bgp", Reason: "NoRouterID",
				Message: "the BGP plan has no router ID: BGP does not start"}}
			return nil
		}
		if err := s.start(ctx, plan.RouterID); err != nil {
			return err
		}
	}
	if plan.RouterID.IsValid() && plan.RouterID != s.routerID {
		problems = append(problems, problemRouterID(s.routerID, plan.RouterID))
	}

	// The desired state, keyed like gobgp keys peers: by address.
	want := map[string]routes.Peer{}
	wantGroups := map[string][]exportGroup{}
	for _, p := range plan.Peers {
		k := peerKey(p)
		if other, dup := want[k]; dup {
			problems = append(problems, routes.Problem{Kind: "BGPPeer", Name: p.Name, Reason: "DuplicateAddress",
				Message: fmt.Sprintf("peer %s has the address %s of peer %s: only %s runs", p.Name, k, other.Name, other.Name)})
			continue
		}
		want[k] = p
		if gs := exportGroups(p, plan.Paths[p.Name]); len(gs) > 0 {
			wantGroups[k] = gs
		}
	}
	s.problems = problems
	newRIB := ribPrefixes(wantGroups)

	// Which peers change how.
	var toDelete, toAdd, toUpdate []string
	for k, old := range s.peers {
		nw, ok := want[k]
		switch {
		case !ok:
			toDelete = append(toDelete, k)
		case comparePeer(old, nw) == peerRecreate:
			toDelete = append(toDelete, k)
			toAdd = append(toAdd, k)
		case comparePeer(old, nw) == peerInPlace:
			toUpdate = append(toUpdate, k)
		}
	}
	for k := range want {
		if _, ok := s.peers[k]; !ok {
			toAdd = append(toAdd, k)
		}
	}
	slices.Sort(toDelete)
	slices.Sort(toAdd)
	slices.Sort(toUpdate)

	// Policies that change, among peers whose session survives this Apply.
	changed := map[string]bool{}
	for k := range want {
		if s.dirty || fmt.Sprint(s.groups[k]) != fmt.Sprint(wantGroups[k]) {
			changed[k] = true
		}
	}
	surviving := map[string][]exportGroup{}
	for k, gs := range s.groups {
		if _, ok := want[k]; ok && !slices.Contains(toDelete, k) {
			surviving[k] = gs
		}
	}
	lost := lostPrefixes(surviving, wantGroups, newRIB)

	// 1. Withdraw, under the old policies, the paths leaving the RIB.
	for _, p := range sortedPrefixes(ribSet(s.rib)) {
		if newRIB[p] {
			continue
		}
		if err := s.deletePath(ctx, p); err != nil {
			return err
		}
	}

	// 2. Delete peers that go away or must be re-created.
	for _, k := range toDelete {
		if err := s.bgp.DeletePeer(ctx, &api.DeletePeerRequest{Address: k}); err != nil {
			return fmt.Errorf("delete peer %s (%s): %w", s.peers[k].Name, k, err)
		}
		s.log.Info("BGP peer deleted", "peer", s.peers[k].Name, "address", k)
		if _, stays := want[k]; !stays {
			s.m.sessionUp.DeleteLabelValues(s.peers[k].Name)
			s.m.advertised.DeleteLabelValues(s.peers[k].Name)
		}
		delete(s.peers, k)
		s.logs.forget(k)
		s.setName(k, "")
	}

	// 3. Export policies: the changed ones, transitional for peers losing prefixes that
	// stay in the RIB (see lostPrefixes); then replace those paths by their other version,
	// which withdraws them from exactly those peers, and give those peers their final
	// policy.
	trans := map[string][]transit{}
	for k, ps := range lost {
		trans[k] = transits(ps, s.rib)
	}
	if err := s.swapPolicies(ctx, want, wantGroups, changed, trans); err != nil {
		return err
	}
	if len(lost) > 0 {
		flipped := map[netip.Prefix]bool{}
		for _, ps := range lost {
			for _, p := range ps {
				flipped[p] = true
			}
		}
		for _, p := range sortedPrefixes(flipped) {
			if err := s.addPath(ctx, p, flip(s.rib[p]), t0); err != nil {
				return err
			}
		}
		final := map[string]bool{}
		for k := range lost {
			final[k] = true
		}
		if err := s.swapPolicies(ctx, want, wantGroups, final, nil); err != nil {
			return err
		}
	}
	s.groups = wantGroups

	// 4. Add peers (their export policy is in place), update in place.
	for _, k := range toAdd {
		p := want[k]
		s.setName(k, p.Name)
		if err := s.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(p)}); err != nil {
			s.setName(k, "")
			return fmt.Errorf("add peer %s (%s): %w", p.Name, k, err)
		}
		s.log.Info("BGP peer added", "peer", p.Name, "address", k, "myASN", p.MyASN, "peerASN", p.PeerASN)
		s.peers[k] = p
	}
	for _, k := range toUpdate {
		p := want[k]
		s.setName(k, p.Name)
		if _, err := s.bgp.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: peerConfig(p)}); err != nil {
			return fmt.Errorf("update peer %s (%s): %w", p.Name, k, err)
		}
		s.log.Info("BGP peer updated in place", "peer", p.Name, "address", k)
		s.peers[k] = p
	}

	// Renamed peers (same address, nothing else changed): bookkeeping only.
	for k, p := range want {
		if old, ok := s.peers[k]; ok && old.Name != p.Name && comparePeer(old, p) == peerSame {
			s.setName(k, p.Name)
			s.peers[k] = p
		}
	}

	// 5. Add paths new to the RIB.
	for _, p := range sortedPrefixes(newRIB) {
		if _, ok := s.rib[p]; ok {
			continue
		}
		if err := s.addPath(ctx, p, originIGP, t0); err != nil {
			return err
		}
	}

	// 6. Soft reset out the surviving peers whose export changed: gobgp re-evaluates their
	// export policy and sends what it now accepts, with the new attributes.
	for _, k := range sortedKeys(changed) {
		if slices.Contains(toAdd, k) {
			continue
		}
		if err := s.bgp.ResetPeer(ctx, &api.ResetPeerRequest{Address: k, Soft: true, Direction: api.ResetPeerRequest_OUT}); err != nil {
			return fmt.Errorf("soft reset out peer %s (%s): %w", want[k].Name, k, err)
		}
	}
	for k, p := range want {
		s.m.advertised.WithLabelValues(p.Name).Set(float64(len(prefixesOf(wantGroups[k]))))
	}
	s.dirty = false
	return nil
}

// swapPolicies builds new export policies for the changed peers that have paths (with
// the transitional statements in trans), makes the global export assignment reference the
// current policy of every peer with paths in one call, and deletes the policies it no
// longer references.
func (s *Server) swapPolicies(ctx context.Context, want map[string]routes.Peer, groups map[string][]exportGroup,
	changed map[string]bool, trans map[string][]transit) error {
	newPolicies := map[string]policyNames{}
	for k, n := range s.policies {
		if _, ok := groups[k]; ok && !changed[k] {
			newPolicies[k] = n
		}
	}
	for _, k := range sortedKeys(groups) {
		if !changed[k] {
			continue
		}
		s.gen++
		n := namesFor(s.gen)
		sets, pol := exportPolicy(want[k], groups[k], n, trans[k]...)
		for _, ds := range sets {
			if err := s.bgp.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds, Replace: true}); err != nil {
				return fmt.Errorf("add defined set %s for peer %s: %w", ds.Name, want[k].Name, err)
			}
		}
		if err := s.bgp.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
			return fmt.Errorf("add export policy for peer %s: %w", want[k].Name, err)
		}
		newPolicies[k] = n
	}
	if !s.dirty && maps.Equal(newPolicies, s.policies) {
		return nil
	}
	var names []string
	for _, k := range sortedKeys(newPolicies) {
		names = append(names, newPolicies[k].Policy)
	}
	if err := s.assignExport(ctx, names); err != nil {
		return err
	}
	old := s.policies
	s.policies = newPolicies
	for k, n := range old {
		if newPolicies[k] != n {
			if err := s.deletePolicy(ctx, n); err != nil {
				return err
			}
		}
	}
	if s.dirty {
		return s.collectGarbage(ctx)
	}
	return nil
}

// addPath adds (or replaces) the RIB path of p with the given origin.
func (s *Server) addPath(ctx context.Context, p netip.Prefix, origin uint8, now time.Time) error {
	path, err := ribPath(p, origin, now)
	if err != nil {
		return fmt.Errorf("path %s: %w", p, err)
	}
	if _, err := s.bgp.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
		return fmt.Errorf("add path %s: %w", p, err)
	}
	s.rib[p] = origin
	return nil
}

func ribSet(rib map[netip.Prefix]uint8) map[netip.Prefix]bool {
	out := make(map[netip.Prefix]bool, len(rib))
	for p := range rib {
		out[p] = true
	}
	return out
}

func (s *Server) deletePath(ctx context.Context, p netip.Prefix) error {
	path, err := ribPath(p, s.rib[p], time.Now())
	if err != nil {
		return fmt.Errorf("path %s: %w", p, err)
	}
	if err := s.bgp.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path}); err != nil {
		return fmt.Errorf("withdraw path %s: %w", p, err)
	}
	delete(s.rib, p)
	return nil
}

// deletePolicy deletes one generation of a peer's export policy and its defined sets.
func (s *Server) deletePolicy(ctx context.Context, n policyNames) error {
	if err := s.bgp.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: n.Policy}, All: true}); err != nil {
		return fmt.Errorf("delete export policy %s: %w", n.Policy, err)
	}
	var sets []*api.DefinedSet
	err := s.bgp.ListDefinedSet(ctx, &api.ListDefinedSetRequest{DefinedType: api.DefinedType_PREFIX}, func(ds *api.DefinedSet) {
		sets = append(sets, ds)
	})
	if err != nil {
		return fmt.Errorf("list defined sets: %w", err)
	}
	for _, ds := range sets {
		if hasGenPrefix(ds.Name, n) {
			if err := s.deleteSet(ctx, api.DefinedType_PREFIX, ds.Name); err != nil {
				return err
			}
		}
	}
	return s.deleteSet(ctx, api.DefinedType_NEIGHBOR, n.Neighbors)
}

func hasGenPrefix(name string, n policyNames) bool {
	return len(name) > len(n.Policy)+2 && name[:len(n.Policy)+2] == n.Policy+"-p"
}

func (s *Server) deleteSet(ctx context.Context, t api.DefinedType, name string) error {
	if err := s.bgp.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{
		DefinedSet: &api.DefinedSet{DefinedType: t, Name: name}, All: true,
	}); err != nil {
		return fmt.Errorf("delete defined set %s: %w", name, err)
	}
	return nil
}

// collectGarbage deletes export policies and defined sets of ours that the assignment no
// longer references: leftovers of an Apply that failed halfway.
func (s *Server) collectGarbage(ctx context.Context) error {
	inUse := map[string]bool{namePrefix + "import": true}
	for _, n := range s.policies {
		inUse[n.Policy] = true
	}
	var stale []string
	if err := s.bgp.ListPolicy(ctx, &api.ListPolicyRequest{}, func(p *api.Policy) {
		if len(p.Name) > len(namePrefix) && p.Name[:len(namePrefix)] == namePrefix && !inUse[p.Name] {
			stale = append(stale, p.Name)
		}
	}); err != nil {
		return fmt.Errorf("list policies: %w", err)
	}
	for _, name := range stale {
		if err := s.bgp.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: name}, All: true}); err != nil {
			return fmt.Errorf("delete stale policy %s: %w", name, err)
		}
	}
	keep := map[string]bool{}
	for _, n := range s.policies {
		keep[n.Neighbors] = true
	}
	for _, t := range []api.DefinedType{api.DefinedType_PREFIX, api.DefinedType_NEIGHBOR} {
		var names []string
		if err := s.bgp.ListDefinedSet(ctx, &api.ListDefinedSetRequest{DefinedType: t}, func(ds *api.DefinedSet) {
			names = append(names, ds.Name)
		}); err != nil {
			return fmt.Errorf("list defined sets: %w", err)
		}
		for _, name := range names {
			if keep[name] || ownedByLive(name, s.policies) {
				continue
			}
			if err := s.deleteSet(ctx, t, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func ownedByLive(set string, live map[string]policyNames) bool {
	for _, n := range live {
		if set == n.Neighbors || hasGenPrefix(set, n) {
			return true
		}
	}
	return false
}

func (s *Server) setName(k, name string) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if name == "" {
		delete(s.names, k)
		delete(s.states, k)
		s.resetBackoffLocked(k)
		return
	}
	s.names[k] = name
}

// ResetPeer hard-resets the named peer's session now (a NOTIFICATION Cease/Administrative
// Reset with reason as its communication, if the connection still carries it), e.g.
// because BFD declared the path down. gobgp reconnects after its idle hold time.
func (s *Server) ResetPeer(name, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for k, p := range s.peers {
		if p.Name != name {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.log.Info("BGP session reset", "peer", name, "address", k, "reason", reason)
		if err := s.bgp.ResetPeer(ctx, &api.ResetPeerRequest{Address: k, Communication: reason}); err != nil {
			return fmt.Errorf("reset peer %s (%s): %w", name, k, err)
		}
		return nil
	}
	return fmt.Errorf("reset peer %s: no such peer", name)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
