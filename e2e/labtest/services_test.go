package labtest

import (
	"bytes"
	"sync"
	"testing"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lesson"
)

// The Services lesson that `make lab` walks a person through (package lesson: ClusterIP
// from a pod with the client's own address, scaling 3 → 1 → 3, NodePort on every node's
// IPv4 and IPv6 address including nodes without a pod, a LoadBalancer IP from the pool
// answered by every pod and known to the router at one node's MAC, then all of it over
// IPv6) runs here on the package's lab, in the test's namespace. Every check it prints
// must hold.
func TestServicesLesson(t *testing.T) {
	e := framework.Setup(t)
	out := &lineLog{t: t}
	res, err := lesson.Run(e.Context(), lesson.Config{Lab: e.Lab, Client: e.Client, Namespace: e.Namespace, Out: out})
	out.flush()
	for _, c := range res.Failed() {
		t.Errorf("%s: %s", c.Step, c.Msg)
	}
	if err != nil {
		t.Fatalf("the lesson stopped: %v", err)
	}
	t.Logf("%d checks, %d failed", len(res.Checks), len(res.Failed()))
}

// lineLog writes each complete line to t.Log (shown with -v or when the test fails).
type lineLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			// Incomplete: keep it for the next Write.
			l.buf.Reset()
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.t.Log(line[:len(line)-1])
	}
}

func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		l.t.Log(l.buf.String())
		l.buf.Reset()
	}
}
