package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loadstone-lb/loadstone/speaker/layer2"
)

// stubAnnouncer reports what it is told to, or panics.
type stubAnnouncer struct {
	name  string
	rep   Report
	panic bool
	calls int
}

func (s *stubAnnouncer) Name() string { return s.name }
func (s *stubAnnouncer) Apply(context.Context, Decision) Report {
	s.calls++
	if s.panic {
		panic("boom")
	}
	return s.rep
}

// One failing or panicking announcer does not stop the others; their errors are
// reported with the announcer's name and counted.
func TestApplyIsolatesAnnouncers(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.10")
	failing := &stubAnnouncer{name: "bgp", rep: Report{Errors: []error{errors.New("session down")}}}
	panicking := &stubAnnouncer{name: "dataplane", panic: true}
	l2 := &stubAnnouncer{name: "layer2", rep: Report{L2: map[netip.Addr][]string{ip: {"eth0"}}}}
	reg := prometheus.NewRegistry()
	a := &Agent{cfg: Config{Announcers: []Announcer{failing, panicking, l2}}, log: slog.New(slog.DiscardHandler), m: newMetrics(reg)}
	rep, _ := a.apply(context.Background(), Decision{})
	if failing.calls != 1 || panicking.calls != 1 || l2.calls != 1 {
		t.Fatalf("calls: %d %d %d", failing.calls, panicking.calls, l2.calls)
	}
	if len(rep.L2) != 1 || len(rep.Errors) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if got := rep.Errors[0].Error(); got != "bgp: session down" {
		t.Errorf("error %q", got)
	}
	if got := rep.Errors[1].Error(); got != "dataplane: panic: boom" {
		t.Errorf("error %q", got)
	}
	if n := testutil.ToFloat64(a.m.announceErrors.WithLabelValues("dataplane")); n != 1 {
		t.Errorf("dataplane errors counted %v", n)
	}
}

// backend is a layer2 backend that serves the IPs it is told, except those in fail.
type backend struct {
	fail       map[netip.Addr]bool
	reannounce [][]netip.Addr
}

func (b *backend) Apply(d layer2.Desired) layer2.Applied {
	out := layer2.Applied{Interfaces: map[netip.Addr][]string{}}
	for ip := range d {
		if b.fail[ip] {
			out.Errors = append(out.Errors, &layer2.IPError{IP: ip, Interface: "eth0", Err: errors.New("no socket")})
			continue
		}
		out.Interfaces[ip] = []string{"eth0"}
	}
	return out
}

func (b *backend) Reannounce(ips ...netip.Addr) { b.reannounce = append(b.reannounce, ips) }

// The layer-2 announcer re-announces only IPs it serves after applying, and its errors
// are grouped by IP for the status.
func TestLayer2AnnouncerReannouncesServedIPsOnly(t *testing.T) {
	ok, bad, gone := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3")
	b := &backend{fail: map[netip.Addr]bool{bad: true}}
	rep := Layer2{Backend: b}.Apply(context.Background(), Decision{L2: L2Decision{
		Desired:    map[netip.Addr][]string{ok: nil, bad: nil},
		Reannounce: []netip.Addr{gone, bad, ok},
	}})
	if len(b.reannounce) != 1 || !slices.Equal(b.reannounce[0], []netip.Addr{ok}) {
		t.Errorf("re-announced %v", b.reannounce)
	}
	if _, served := rep.L2[ok]; !served || len(rep.L2) != 1 {
		t.Errorf("served %v", rep.L2)
	}
	if e := rep.errorsByIP(); len(e[bad]) != 1 || len(e) != 1 {
		t.Errorf("errors by IP %v", e)
	}
	// Nothing to re-announce: no call.
	b.reannounce = nil
	Layer2{Backend: b}.Apply(context.Background(), Decision{L2: L2Decision{Desired: map[netip.Addr][]string{ok: nil}}})
	if len(b.reannounce) != 0 {
		t.Errorf("re-announce call without IPs: %v", b.reannounce)
	}
}
