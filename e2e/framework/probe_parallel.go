package framework

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Outcome is one finished probe: when it started and whether it succeeded.
type Outcome struct {
	Start time.Time
	OK    bool
}

// gapsOf folds outcomes (in any order) into a ProbeResult, for both probe loops: sorted by
// start time, a gap runs from the last success before a failure to the first success
// after it (or to end, and the result is Open).
func gapsOf(outcomes []Outcome, end time.Time) ProbeResult {
	slices.SortFunc(outcomes, func(a, b Outcome) int { return a.Start.Compare(b.Start) })
	r := ProbeResult{Answers: map[string]int{}, Outcomes: outcomes}
	var last time.Time
	var gap *Gap
	for _, o := range outcomes {
		r.Sent++
		if o.OK {
			r.OK++
			if gap != nil {
				gap.To = o.Start
				r.Gaps = append(r.Gaps, *gap)
				gap = nil
			}
			last = o.Start
			continue
		}
		r.Failed++
		if gap == nil {
			from := last
			if from.IsZero() {
				from = o.Start
			}
			gap = &Gap{From: from}
		}
		gap.Failed++
	}
	if gap != nil {
		gap.To = end
		r.Gaps = append(r.Gaps, *gap)
		r.Open = true
	}
	return r
}

// parallelTCPLoop starts a non-blocking TCP connect to cfg.Target (an IP:port) every
// cfg.Interval, without waiting for earlier ones, and gives each cfg.Timeout. Everything
// happens on the calling thread (sockets are created in its network namespace), with
// ppoll for completion. Probes still in flight when ctx ends are not counted.
func parallelTCPLoop(ctx context.Context, cfg ProbeConfig) (ProbeResult, error) {
	ap, err := netip.ParseAddrPort(cfg.Target)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("probe target %q: want IP:port: %w", cfg.Target, err)
	}
	domain := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		domain = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	type inflight struct {
		fd    int
		start time.Time
	}
	var fl []inflight
	var outcomes []Outcome
	defer func() {
		for _, f := range fl {
			unix.Close(f.fd)
		}
	}()
	next := time.Now()
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(next) {
			fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return ProbeResult{}, fmt.Errorf("probe socket: %w", err)
			}
			switch err := unix.Connect(fd, sa); {
			case err == nil:
				outcomes = append(outcomes, Outcome{Start: now, OK: true})
				unix.Close(fd)
			case errors.Is(err, unix.EINPROGRESS):
				fl = append(fl, inflight{fd: fd, start: now})
			default: // refused or unreachable at once
				outcomes = append(outcomes, Outcome{Start: now})
				unix.Close(fd)
			}
			next = next.Add(cfg.Interval)
			if next.Before(now) {
				next = now.Add(cfg.Interval) // fell behind: skip, do not burst
			}
		}
		pfds := make([]unix.PollFd, len(fl))
		for i, f := range fl {
			pfds[i] = unix.PollFd{Fd: int32(f.fd), Events: unix.POLLOUT}
		}
		wait := max(time.Until(next), 0)
		ts := unix.NsecToTimespec(wait.Nanoseconds())
		if _, err := unix.Ppoll(pfds, &ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
			return ProbeResult{}, fmt.Errorf("probe ppoll: %w", err)
		}
		now = time.Now()
		kept := fl[:0]
		for i, f := range fl {
			switch {
			case pfds[i].Revents != 0:
				soErr, err := unix.GetsockoptInt(f.fd, unix.SOL_SOCKET, unix.SO_ERROR)
				outcomes = append(outcomes, Outcome{Start: f.start, OK: err == nil && soErr == 0})
				unix.Close(f.fd)
			case now.Sub(f.start) >= cfg.Timeout:
				outcomes = append(outcomes, Outcome{Start: f.start})
				unix.Close(f.fd)
			default:
				kept = append(kept, f)
			}
		}
		fl = kept
	}
	return gapsOf(outcomes, time.Now()), nil
}
