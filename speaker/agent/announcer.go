package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/loadstone-lb/loadstone/speaker/layer2"
	"github.com/loadstone-lb/loadstone/speaker/observe"
)

// Decision is the decided state the loop hands every announcer. Each applies its part:
// layer 2 reads L2; BGP and the dataplane decide theirs purely from Snapshot and Alive
// (BGP also from Carried).
type Decision struct {
	Snapshot *observe.Snapshot
	// Alive are the members the heal policy counts as alive (the view plus debounced
	// deaths): every protocol elects on the same set.
	Alive map[string]bool
	L2    L2Decision
	// Carried are the LB IPs this node's dataplane has installed (the dataplane
	// announcer's Report.Carried; the dataplane itself gets nil). An IP in
	// Snapshot.Gated is announced only when it is here: L2.Desired already leaves the
	// others out, and BGP withholds them.
	Carried map[netip.Addr]bool
}

// L2Decision is what layer 2 answers for (IP → interfaces; none: the interface holding
// the route to the IP), and the IPs to send a gratuitous round for after applying it.
type L2Decision struct {
	Desired    map[netip.Addr][]string
	Reannounce []netip.Addr
}

// Report is what an announcer really applied.
type Report struct {
	// L2 maps each IP layer 2 answers for to its interfaces (layer 2 only; nil otherwise).
	L2 map[netip.Addr][]string
	// BGP is what the BGP announcer applied (BGP only; nil otherwise).
	BGP *BGPReport
	// Carried are the LB IPs the dataplane has installed (the dataplane only; nil
	// otherwise).
	Carried map[netip.Addr]bool
	// Errors say what could not be applied; an *layer2.IPError names its IP.
	Errors []error
}

// Announcer applies its part of a Decision idempotently and reports what it applied.
// A failure is reported, never fatal: the loop retries with backoff.
type Announcer interface {
	Name() string
	Apply(ctx context.Context, d Decision) Report
}

// apply hands the decision to the dataplane first, then, with the IPs it carries, to
// every other announcer: layer 2 gets L2.Desired without the gated IPs the dataplane
// does not carry, BGP withholds them itself (routes.Input.Carried). One failing (or
// panicking) announcer does not stop the others. It returns the merged report and the
// layer-2 state the announcers were given.
func (a *Agent) apply(ctx context.Context, d Decision) (Report, L2Decision) {
	var out Report
	carried := map[netip.Addr]bool{}
	if a.cfg.Dataplane != nil {
		if r := a.applyOne(ctx, a.cfg.Dataplane, d, &out); r.Carried != nil {
			carried = r.Carried
		}
		out.Carried = carried
	}
	d.Carried = carried
	var withheld int
	d.L2.Desired, withheld = gateL2(d.Snapshot, d.L2.Desired, carried)
	a.m.withheld.Set(float64(withheld))
	for _, an := range a.cfg.Announcers {
		a.applyOne(ctx, an, d, &out)
	}
	return out, d.L2
}

// applyOne applies one announcer, merges its report into out and returns it.
func (a *Agent) applyOne(ctx context.Context, an Announcer, d Decision, out *Report) Report {
	r := safeApply(ctx, an, d)
	if r.L2 != nil {
		out.L2 = r.L2
	}
	if r.BGP != nil {
		out.BGP = r.BGP
	}
	for _, err := range r.Errors {
		a.log.Warn("announce failed", "announcer", an.Name(), "err", err)
		a.m.announceErrors.WithLabelValues(an.Name()).Inc()
		out.Errors = append(out.Errors, fmt.Errorf("%s: %w", an.Name(), err))
	}
	return r
}

func safeApply(ctx context.Context, an Announcer, d Decision) (r Report) {
	defer func() {
		if p := recover(); p != nil {
			r = Report{Errors: []error{fmt.Errorf("panic: %v", p)}}
		}
	}()
	return an.Apply(ctx, d)
}

// errorsByIP groups the errors that name an IP.
func (r Report) errorsByIP() map[netip.Addr][]string {
	out := map[netip.Addr][]string{}
	for _, err := range r.Errors {
		var ipErr *layer2.IPError
		if errors.As(err, &ipErr) {
			out[ipErr.IP] = append(out[ipErr.IP], ipErr.Error())
		}
	}
	return out
}

// Layer2Backend is the part of layer2.Announcer the loop uses.
type Layer2Backend interface {
	Apply(layer2.Desired) layer2.Applied
	Reannounce(ips ...netip.Addr)
}

var _ Layer2Backend = (*layer2.Announcer)(nil)

// Layer2 is the layer-2 announcer: ARP and NDP answers for the decided IPs.
type Layer2 struct{ Backend Layer2Backend }

var _ Announcer = Layer2{}

// Name implements Announcer.
func (Layer2) Name() string { return "layer2" }

// Apply implements Announcer: apply the desired set, then re-announce the listed IPs
// that are served.
func (l Layer2) Apply(_ context.Context, d Decision) Report {
	applied := l.Backend.Apply(layer2.Desired(d.L2.Desired))
	r := Report{L2: applied.Interfaces, Errors: applied.Errors}
	if r.L2 == nil {
		r.L2 = map[netip.Addr][]string{}
	}
	var again []netip.Addr
	for _, ip := range d.L2.Reannounce {
		if _, ok := r.L2[ip]; ok {
			again = append(again, ip)
		}
	}
	if len(again) > 0 {
		slices.SortFunc(again, netip.Addr.Compare)
		l.Backend.Reannounce(again...)
	}
	return r
}
