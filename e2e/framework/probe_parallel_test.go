package framework

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestGapsOfOrdersByStart(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Finished out of order, as parallel probes do: failures are known only at their
	// timeout, after later successes.
	r := gapsOf([]Outcome{
		{Start: at(0), OK: true}, {Start: at(3), OK: true}, {Start: at(1)}, {Start: at(2)},
		{Start: at(5)}, {Start: at(4), OK: true}, {Start: at(6)},
	}, at(10))
	if r.Sent != 7 || r.OK != 3 || r.Failed != 4 {
		t.Errorf("counts %+v", r)
	}
	if len(r.Gaps) != 2 || r.Gaps[0].From != at(0) || r.Gaps[0].To != at(3) || r.Gaps[0].Failed != 2 ||
		r.Gaps[1].From != at(4) || r.Gaps[1].To != at(10) || !r.Open {
		t.Errorf("gaps %+v open=%v", r.Gaps, r.Open)
	}
	if r.MaxGap() != 6*time.Millisecond {
		t.Errorf("MaxGap = %v", r.MaxGap())
	}
}

// The parallel loop against a loopback listener: all succeed while it listens; while it is
// closed every connect is refused, which shows as one gap between the last success before
// and the first after.
func TestParallelTCPLoopLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accept := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go accept(ln)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan ProbeResult, 1)
	go func() {
		r, err := parallelTCPLoop(ctx, ProbeConfig{Target: addr, Interval: time.Millisecond, Timeout: 50 * time.Millisecond})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	time.Sleep(100 * time.Millisecond)
	ln.Close()
	closed := time.Now()
	time.Sleep(100 * time.Millisecond)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	defer ln2.Close()
	reopened := time.Now()
	go accept(ln2)
	time.Sleep(100 * time.Millisecond)
	cancel()
	r := <-done
	t.Logf("%s", r)
	if r.OK == 0 || r.Failed == 0 || len(r.Gaps) != 1 || r.Open {
		t.Fatalf("want successes, one closed gap of refusals: %s %+v", r, r.Gaps)
	}
	g := r.Gaps[0]
	// The gap covers the time the port was closed (its ends are probe starts around it).
	if g.From.After(closed) || g.To.Before(reopened) {
		t.Errorf("gap %v..%v does not cover the closed time %v..%v", g.From, g.To, closed, reopened)
	}
}
