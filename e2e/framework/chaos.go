package framework

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// Kill sends SIGKILL to a lab process by role name (e.g. "speaker-ls-node1") and waits
// until it is gone. It returns the record, for StartProc.
func (e *Env) Kill(name string) lab.Proc {
	e.T.Helper()
	p, err := e.Lab.StopProc(name, 0)
	if err != nil {
		e.T.Fatalf("kill %s: %v", name, err)
	}
	return p
}

// Stop sends SIGTERM to a lab process (SIGKILL after grace) and returns its record.
func (e *Env) Stop(name string, grace time.Duration) lab.Proc {
	e.T.Helper()
	p, err := e.Lab.StopProc(name, grace)
	if err != nil {
		e.T.Fatalf("stop %s: %v", name, err)
	}
	return p
}

// StartProc starts a stopped process again.
func (e *Env) StartProc(p lab.Proc) lab.Proc {
	e.T.Helper()
	p2, err := e.Lab.StartProc(p)
	if err != nil {
		e.T.Fatalf("start %s: %v", p.Name, err)
	}
	return p2
}

// nodeProcs are the per-node processes, in stop order.
func nodeProcs(node string) []string {
	return []string{"speaker-" + node, "kube-proxy-" + node, "nodeagent-" + node}
}

// StoppedNode is what StopNode stopped, for RestartNode.
type StoppedNode struct {
	Node  string
	procs []lab.Proc
}

// StopNode stops a node's speaker, kube-proxy and node agent (SIGTERM with grace, or
// SIGKILL at once when grace is 0), as when a machine shuts down or crashes. The network
// stays up; cut it with CutLink.
func (e *Env) StopNode(node string, grace time.Duration) StoppedNode {
	e.T.Helper()
	s := StoppedNode{Node: node}
	for _, name := range nodeProcs(node) {
		if _, ok := e.Lab.Proc(name); !ok {
			continue
		}
		s.procs = append(s.procs, e.Stop(name, grace))
	}
	return s
}

// RestartNode starts again what StopNode stopped (node agent first).
func (e *Env) RestartNode(s StoppedNode) {
	e.T.Helper()
	for i := len(s.procs) - 1; i >= 0; i-- {
		e.StartProc(s.procs[i])
	}
}

// CutLink silently disconnects a node from the LAN: its port leaves the router's bridge,
// so frames are dropped while the node's interface stays up (no carrier change: like a
// failed switch port, only timers notice). RestoreLink undoes it; the cut is also undone
// when the test ends.
func (e *Env) CutLink(node string) {
	e.T.Helper()
	n, ok := e.node(node)
	if !ok {
		e.T.Fatalf("no node %s", node)
	}
	if out, err := ipCmd(lab.RouterNS, "link", "set", n.RouterPort, "nomaster"); err != nil {
		e.T.Fatalf("cut %s: %v: %s", node, err, out)
	}
	e.T.Cleanup(func() { _, _ = ipCmd(lab.RouterNS, "link", "set", n.RouterPort, "master", lab.Bridge) })
}

// RestoreLink reattaches a node's port to the router's bridge.
func (e *Env) RestoreLink(node string) {
	e.T.Helper()
	n, ok := e.node(node)
	if !ok {
		e.T.Fatalf("no node %s", node)
	}
	if out, err := ipCmd(lab.RouterNS, "link", "set", n.RouterPort, "master", lab.Bridge); err != nil {
		e.T.Fatalf("restore %s: %v: %s", node, err, out)
	}
}

func (e *Env) node(name string) (lab.Node, bool) {
	for _, n := range e.Lab.Nodes() {
		if n.Name == name {
			return n, true
		}
	}
	return lab.Node{}, false
}

func ipCmd(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Exec runs a command inside a lab namespace and returns its combined output.
func Exec(ns string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s: %w: %s", ns, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
