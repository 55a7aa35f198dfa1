package agent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/loadstone-lb/loadstone/dataplane/nft"
	"github.com/loadstone-lb/loadstone/dataplane/plan"
	"github.com/loadstone-lb/loadstone/speaker/observe"
)

// DataplaneBackend is the part of nft.Applier the loop uses.
type DataplaneBackend interface {
	Apply(plan.Plan) error
	Resync()
	Remove() error
}

var _ DataplaneBackend = (*nft.Applier)(nil)

// ConntrackFlusher is implemented by a DataplaneBackend that can delete the connection
// tracking entries NATed to given backends (nft.Applier does). The announcer uses it for
// the endpoints of dead nodes.
type ConntrackFlusher interface {
	FlushConntrack(addrs []netip.Addr) (uint, error)
}

var _ ConntrackFlusher = (*nft.Applier)(nil)

// DefaultDataplaneResync is how often the dataplane announcer asks its backend for a
// full sync (which lists the table back and repairs any drift).
const DefaultDataplaneResync = 5 * time.Minute

// Dataplane is the dataplane announcer: it turns the snapshot into a plan.Input (the
// decided alive set, this node, the table IDs of the last plan), computes the plan
// (package dataplane/plan, pure) and installs it (package dataplane/nft). Its Report
// carries the LB IPs it carries (Report.Carried), which the agent uses to gate layer 2
// and BGP. When no Service uses the dataplane it removes its table, so nothing of ours
// stays in the kernel.
type Dataplane struct {
	Backend DataplaneBackend
	Logger  *slog.Logger
	// Clock times the periodic full sync (nil: the real clock); ResyncPeriod is its
	// period (0: DefaultDataplaneResync).
	Clock        clock.PassiveClock
	ResyncPeriod time.Duration
	// MaglevMinFactor and MaglevMax size the Maglev tables (0: package maglev's
	// defaults); they must be the same on every node.
	MaglevMinFactor, MaglevMax int

	mu sync.Mutex
	// ids are the table IDs of the last plan; carried the IPs of the last plan installed.
	ids     map[plan.Key]uint32
	carried map[netip.Addr]bool
	// lastFull is when the backend was last told to resync (zero: never); removed means
	// the table is known to be gone (after a successful Remove, until the next Apply).
	lastFull time.Time
	removed  bool
	// planProblem is the last plan error logged ("" for none).
	planProblem string
	// flushed are the endpoint addresses on dead nodes whose conntrack entries were
	// deleted; an address leaves it when its node is alive again (or it is gone), so a
	// second death flushes again.
	flushed map[netip.Addr]bool
}

var _ Announcer = (*Dataplane)(nil)

// Name implements Announcer.
func (*Dataplane) Name() string { return "dataplane" }

// Apply implements Announcer. Carried in the report is never nil.
//
// An IP is carried once a plan holding it (as a frontend with backends or as a reject)
// is installed. After a failed install, the IPs carried before that are still in the
// new plan stay carried (the backend repairs the table with a full sync on the next
// Apply; withdrawing their announcements would turn a transient netlink error into an
// outage), but no new IP is: it is announced only after a successful install.
func (d *Dataplane) Apply(_ context.Context, dec Decision) Report {
	d.mu.Lock()
	defer d.mu.Unlock()
	clk := d.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	period := d.ResyncPeriod
	if period <= 0 {
		period = DefaultDataplaneResync
	}
	now := clk.Now()
	full := d.lastFull.IsZero() || now.Sub(d.lastFull) >= period
	if full {
		d.lastFull = now
	}
	rep := Report{Carried: map[netip.Addr]bool{}}
	snap := dec.Snapshot
	if snap == nil || !snap.DataplaneUsed() {
		// Nothing uses the dataplane: no table. Remove once, and again at every
		// periodic resync (someone may have recreated it).
		d.ids, d.carried = nil, nil
		if !d.removed || full {
			if err := d.Backend.Remove(); err != nil {
				d.removed = false
				rep.Errors = append(rep.Errors, fmt.Errorf("remove table: %w", err))
				return rep
			}
			d.removed = true
			d.log().Debug("no Service uses the dataplane; table removed", "table", "inet "+nft.TableName)
		}
		return rep
	}
	if full {
		d.log().Debug("full dataplane sync")
		d.Backend.Resync()
	}
	in := DataplaneInput(snap, dec.Alive, d.ids, d.MaglevMinFactor, d.MaglevMax)
	p, cerr := plan.Compute(in)
	// The plan holds every Service that could be planned; the others (a frontend two
	// Services claim, a table that cannot be built) are configuration problems, not
	// failures to retry: logged when they change, and their IPs are not carried.
	if msg := errString(cerr); msg != d.planProblem {
		d.planProblem = msg
		if msg != "" {
			d.log().Warn("some Services cannot be served by the dataplane", "err", msg)
		}
	}
	d.ids = p.IDs
	d.removed = false
	want := planIPs(p)
	if err := d.Backend.Apply(p); err != nil {
		rep.Errors = append(rep.Errors, fmt.Errorf("apply: %w", err))
		for ip := range d.carried {
			if want[ip] {
				rep.Carried[ip] = true
			}
		}
		d.carried = maps.Clone(rep.Carried)
		return rep
	}
	d.carried = want
	maps.Copy(rep.Carried, want)
	d.flushDead(in)
	return rep
}

// flushDead deletes, once per death, the conntrack entries NATed to endpoints of the
// plan's Services on nodes that are not alive (the plan just dropped them from every
// table). Entries of terminating endpoints on live nodes are kept: their connections
// continue. A failure is logged and retried on the next Apply.
func (d *Dataplane) flushDead(in plan.Input) {
	f, ok := d.Backend.(ConntrackFlusher)
	if !ok {
		return
	}
	dead := map[netip.Addr]bool{}
	for _, s := range in.Services {
		for _, ep := range s.Endpoints {
			if ep.Node != "" && !in.Alive[ep.Node] {
				dead[ep.Addr] = true
			}
		}
	}
	var todo []netip.Addr
	for a := range dead {
		if !d.flushed[a] {
			todo = append(todo, a)
		}
	}
	if len(todo) > 0 {
		slices.SortFunc(todo, netip.Addr.Compare)
		n, err := f.FlushConntrack(todo)
		if err != nil {
			d.log().Warn("could not delete the conntrack entries of dead nodes' endpoints", "endpoints", len(todo), "err", err)
			for _, a := range todo {
				delete(dead, a) // retried next time
			}
		} else {
			d.log().Info("deleted the conntrack entries of dead nodes' endpoints", "endpoints", len(todo), "entries", n)
		}
	}
	d.flushed = dead
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (d *Dataplane) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// planIPs are the LB IPs that p serves: with backends or as rejects.
func planIPs(p plan.Plan) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for f := range p.Frontends {
		out[f.Addr] = true
	}
	for f := range p.Reject {
		out[f.Addr] = true
	}
	return out
}

// DataplaneInput is the plan.Input of node snap.Self: the Services of the snapshot in key
// order, each split by mode when its LB IPs come from pools of different modes (IPs in
// mode off are left out), alive as the live members (the heal policy's set, as for
// layer 2 and BGP; in degraded mode, the Ready nodes), every node's InternalIPs, and the
// table IDs of the last plan.
func DataplaneInput(snap *observe.Snapshot, alive map[string]bool, ids map[plan.Key]uint32, minFactor, maxSize int) plan.Input {
	in := plan.Input{Node: snap.Self, Alive: alive, NodeAddrs: snap.NodeAddrs, IDs: ids,
		MaglevMinFactor: minFactor, MaglevMax: maxSize}
	if snap.Degraded {
		in.Alive = map[string]bool{}
		for _, n := range snap.Nodes {
			if n.Ready {
				in.Alive[n.Name] = true
			}
		}
	}
	for _, k := range snap.Keys {
		s := snap.Services[k]
		dp := s.Dataplane
		// One plan.Service per mode in use: each LB IP has its pool's mode.
		byMode := map[plan.Mode][]netip.Addr{}
		for _, ip := range s.IPs {
			if m := dp.Modes[ip]; m != plan.ModeOff {
				byMode[m] = append(byMode[m], ip)
			}
		}
		// A plan table is keyed by Service, port and family: IPs of one family in both
		// modes (two pools of the same family with different modes) cannot both be
		// planned, so the nodeport ones are left out (never carried, so never announced).
		families := map[bool]bool{}
		for _, ip := range byMode[plan.ModePods] {
			families[ip.Is6()] = true
		}
		byMode[plan.ModeNodePort] = slices.DeleteFunc(byMode[plan.ModeNodePort], func(ip netip.Addr) bool { return families[ip.Is6()] })
		for _, m := range []plan.Mode{plan.ModePods, plan.ModeNodePort} {
			if len(byMode[m]) == 0 {
				continue
			}
			svc := plan.Service{Name: k, LBIPs: byMode[m], ClientIPAffinity: dp.ClientIPAffinity,
				SourceRanges: dp.SourceRanges, Mode: m, Endpoints: dp.Endpoints}
			if s.LocalTraffic {
				svc.TrafficPolicy = plan.PolicyLocal
			}
			for _, p := range dp.Ports {
				svc.Ports = append(svc.Ports, plan.Port{Name: p.Name, Protocol: p.Protocol, Port: p.Port, NodePort: p.NodePort})
			}
			in.Services = append(in.Services, svc)
		}
	}
	return in
}

// gateL2 returns desired without the IPs the dataplane must carry but does not (they
// are withheld like a hold-down: the election stands, this node just does not answer
// yet), and how many it withheld.
func gateL2(snap *observe.Snapshot, desired map[netip.Addr][]string, carried map[netip.Addr]bool) (map[netip.Addr][]string, int) {
	if snap == nil {
		return desired, 0
	}
	n := 0
	for ip := range desired {
		if snap.Gated[ip] && !carried[ip] {
			n++
		}
	}
	if n == 0 {
		return desired, 0
	}
	out := make(map[netip.Addr][]string, len(desired)-n)
	for ip, ifs := range desired {
		if !snap.Gated[ip] || carried[ip] {
			out[ip] = ifs
		}
	}
	return out, n
}
