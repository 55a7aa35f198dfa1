package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loadstone-lb/loadstone/speaker/bgp"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// Reply is the answer to one command, one JSON line on stdout.
type Reply struct {
	Cmd string `json:"cmd"`
	// Err is the command's error ("" on success).
	Err string `json:"err,omitempty"`
	// StartNs is when Apply was called (Unix nanoseconds); ApplyNs how long it took.
	StartNs int64 `json:"start_ns,omitempty"`
	ApplyNs int64 `json:"apply_ns,omitempty"`
	// CPUUs is the process's user+system CPU time so far (getrusage), in microseconds.
	CPUUs int64 `json:"cpu_us"`
	// HWMKiB is the process's peak resident set size so far (VmHWM), in KiB.
	HWMKiB int64 `json:"hwm_kib"`
}

// benchRange is RFC 2544's benchmarking range; the prefixes are its first N addresses.
var benchRange = netip.MustParsePrefix("198.18.0.0/15")

func main() {
	var (
		peer    = flag.String("peer", "192.0.2.1", "router address")
		source  = flag.String("source", "192.0.2.10", "local address of the session (also the router ID)")
		myASN   = flag.Uint("my-asn", 64600, "local AS")
		peerASN = flag.Uint("peer-asn", 64500, "router's AS")
		n       = flag.Int("prefixes", 10000, "number of /32 prefixes to announce (at most 131072)")
		timeout = flag.Duration("establish-timeout", 90*time.Second, "how long establish waits")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(log, *peer, *source, uint32(*myASN), uint32(*peerASN), *n, *timeout); err != nil {
		log.Error("b9speaker", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, peerAddr, sourceAddr string, myASN, peerASN uint32, n int, timeout time.Duration) error {
	pa, err := netip.ParseAddr(peerAddr)
	if err != nil {
		return fmt.Errorf("-peer: %w", err)
	}
	sa, err := netip.ParseAddr(sourceAddr)
	if err != nil {
		return fmt.Errorf("-source: %w", err)
	}
	paths, err := prefixes(n)
	if err != nil {
		return err
	}
	peer := routes.Peer{Name: "router", Address: pa, SourceAddress: sa, MyASN: myASN, PeerASN: peerASN,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: time.Second}
	empty := routes.Plan{RouterID: sa, Peers: []routes.Peer{peer}}
	full := empty
	full.Paths = map[string][]routes.Path{peer.Name: paths}

	ctx := context.Background()
	srv := bgp.New(bgp.Config{Logger: log})
	defer func() {
		if err := srv.Close(ctx); err != nil {
			log.Error("close", "err", err)
		}
	}()
	enc := json.NewEncoder(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd := strings.TrimSpace(in.Text())
		r := Reply{Cmd: cmd}
		var err error
		switch cmd {
		case "establish":
			err = establish(ctx, srv, empty, timeout)
		case "announce":
			r.StartNs, r.ApplyNs, err = timedApply(ctx, srv, full)
		case "withdraw":
			r.StartNs, r.ApplyNs, err = timedApply(ctx, srv, empty)
		case "stats":
		case "quit":
			return nil
		default:
			err = fmt.Errorf("unknown command %q", cmd)
		}
		if err != nil {
			r.Err = err.Error()
		}
		r.CPUUs, r.HWMKiB = usage()
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write reply: %w", err)
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("read commands: %w", err)
	}
	return nil
}

// prefixes returns the first n /32s of 198.18.0.0/15, in order.
func prefixes(n int) ([]routes.Path, error) {
	if n < 0 || n > 1<<(32-benchRange.Bits()) {
		return nil, fmt.Errorf("-prefixes %d: want 0..%d", n, 1<<(32-benchRange.Bits()))
	}
	out := make([]routes.Path, 0, n)
	a := benchRange.Addr()
	for range n {
		out = append(out, routes.Path{Prefix: netip.PrefixFrom(a, 32)})
		a = a.Next()
	}
	return out, nil
}

func timedApply(ctx context.Context, srv *bgp.Server, plan routes.Plan) (start, took int64, err error) {
	t0 := time.Now()
	err = srv.Apply(ctx, plan)
	return t0.UnixNano(), int64(time.Since(t0)), err
}

func establish(ctx context.Context, srv *bgp.Server, plan routes.Plan, timeout time.Duration) error {
	if err := srv.Apply(ctx, plan); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last []bgp.Session
	for time.Now().Before(deadline) {
		last = srv.Sessions()
		if len(last) == 1 && last[0].State == bgp.StateEstablished {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("session not established within %v: %+v", timeout, last)
}

// usage returns the process's CPU time (µs) and VmHWM (KiB); -1 where unreadable.
func usage() (cpuUs, hwmKiB int64) {
	var ru syscall.Rusage
	cpuUs = -1
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpuUs = ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
	}
	hwmKiB, err := vmHWM()
	if err != nil {
		hwmKiB = -1
	}
	return cpuUs, hwmKiB
}

func vmHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
