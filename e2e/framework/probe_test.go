package framework

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/loadstone-lb/loadstone/internal/nsthread"
)

func TestStartProbeMissingNetns(t *testing.T) {
	if _, err := StartProbe(ProbeConfig{Netns: "lsprobe-no-such-netns", Target: "127.0.0.1:1"}); err == nil {
		t.Fatal("StartProbe into a missing namespace returned no error")
	}
}

// The probe loop runs inside its namespace: it reaches a listener on 127.0.0.1 that exists
// only there. Needs root; the namespace is the test's own (not "ls-", so a lab's clean-up
// never touches it) and is deleted by name.
func TestStartProbeRunsInNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a network namespace (root); not run with -short")
	}
	name := fmt.Sprintf("lsprobe-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	var ln net.Listener
	if err := nsthread.DoNamed(name, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The accept loop signals the second connection: the sequential probe dials the next
	// one only after counting the previous, so at least one success is counted when the
	// probe stops (no fixed wait that a slow machine could outlast).
	accepted := make(chan struct{})
	go func() {
		n := 0
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			if n++; n == 2 {
				close(accepted)
			}
		}
	}()
	p, err := StartProbe(ProbeConfig{Netns: name, Target: ln.Addr().String(), Mode: ProbeTCP, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-accepted:
	case <-time.After(30 * time.Second): // bounds a failing test only
		t.Error("no connection from the probe reached the listener")
	}
	r := p.Stop()
	if r.OK == 0 || r.Failed != 0 || r.Open {
		t.Fatalf("probe to %s inside %s: %s", ln.Addr(), name, r)
	}
}
