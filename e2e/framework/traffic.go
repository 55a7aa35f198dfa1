package framework

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/loadstone-lb/loadstone/e2e/lab"
	"github.com/loadstone-lb/loadstone/internal/nsthread"
)

// HTTPClient returns an HTTP client whose connections start inside network namespace ns
// (lab.ClientNS for the outside client, a node, or a pod's namespace). Keep-alives are off:
// every request is a new connection, so load balancing shows.
func HTTPClient(ns string, timeout time.Duration) *http.Client {
	d := lab.Dialer{Netns: ns, Timeout: timeout}
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
	}
}

// Answer is the built-in workload's HTTP answer: "pod=P node=N client=IP:PORT".
type Answer struct {
	Pod, Node, Client string
}

// ParseAnswer parses the workload's answer.
func ParseAnswer(body string) (Answer, error) {
	var a Answer
	for _, f := range strings.Fields(body) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "pod":
			a.Pod = v
		case "node":
			a.Node = v
		case "client":
			a.Client = v
		}
	}
	if a.Pod == "" {
		return a, fmt.Errorf("not a workload answer: %q", body)
	}
	return a, nil
}

// Get sends one GET from inside namespace ns and parses the workload's answer.
func Get(ctx context.Context, ns, url string) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Answer{}, err
	}
	resp, err := HTTPClient(ns, 3*time.Second).Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return Answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return ParseAnswer(string(b))
}

// GetEventually retries Get until it succeeds (kube-proxy or an announcement may take a
// moment to be programmed) and returns the first answer.
func (e *Env) GetEventually(ns, url string, timeout time.Duration) Answer {
	e.T.Helper()
	var a Answer
	e.Eventually("an answer from "+url+" in "+ns, timeout, func() (bool, error) {
		var err error
		a, err = Get(e.Context(), ns, url)
		return err == nil, err
	})
	return a
}

// Spread sends n GETs from ns and counts answers per pod; errors are counted under "".
func Spread(ctx context.Context, ns, url string, n int) map[string]int {
	out, _ := SpreadErrors(ctx, ns, url, n)
	return out
}

// SpreadErrors is Spread that also returns the errors counted under "", so a test can say
// why requests failed.
func SpreadErrors(ctx context.Context, ns, url string, n int) (map[string]int, []error) {
	return spreadBy(ctx, ns, url, n, func(a Answer) string { return a.Pod })
}

// spreadBy sends n GETs from ns and counts answers by key; errors are counted under "" and
// returned.
func spreadBy(ctx context.Context, ns, url string, n int, key func(Answer) string) (map[string]int, []error) {
	out := map[string]int{}
	var errs []error
	for i := 0; i < n; i++ {
		a, err := Get(ctx, ns, url)
		if err != nil {
			out[""]++
			errs = append(errs, fmt.Errorf("request %d at %s: %w", i, time.Now().Format("15:04:05.000"), err))
			continue
		}
		out[key(a)]++
	}
	return out, errs
}

// UDPEcho sends msg to addr over UDP from inside ns and returns the echo.
func UDPEcho(ns, addr, msg string, timeout time.Duration) (string, error) {
	var conn net.Conn
	err := nsthread.DoNamed(ns, func() error {
		var err error
		conn, err = net.Dial("udp", addr)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// ProbeMode is what a probe sends.
type ProbeMode int

// Probe modes.
const (
	// ProbeTCP opens (and closes) a TCP connection per probe.
	ProbeTCP ProbeMode = iota
	// ProbeHTTP sends one GET per probe on a new connection.
	ProbeHTTP
	// ProbeUDP sends a numbered datagram per probe and waits for its echo.
	ProbeUDP
	// ProbeTCPParallel starts a TCP connect every Interval without waiting for earlier
	// ones (each has Timeout), so a connect that hangs (a SYN to a dead backend) does not
	// hold back the next probe and stretch the measured gap. Target must be IP:port.
	ProbeTCPParallel
)

// ProbeConfig configures a probe loop.
type ProbeConfig struct {
	// Netns the probes start in (default lab.ClientNS).
	Netns string
	// Target is host:port.
	Target string
	Mode   ProbeMode
	// Interval between probe starts (default 1 ms); Timeout per probe (default 100 ms).
	Interval, Timeout time.Duration
	// Max bounds the loop's duration (default 2 minutes): a probe never runs forever.
	Max time.Duration
}

// Gap is a stretch without successful probes.
type Gap struct {
	// From is the last success before the gap, To the first success after it (or the end).
	From, To time.Time
	// Failed is the number of failed probes inside it.
	Failed int
}

// Duration of the gap.
func (g Gap) Duration() time.Duration { return g.To.Sub(g.From) }

// ProbeResult sums up a probe loop.
type ProbeResult struct {
	Sent, OK, Failed int
	Gaps             []Gap
	// Open is true when the loop ended while failing.
	Open bool
	// Answers counts successful HTTP answers per pod (ProbeHTTP only).
	Answers map[string]int
	// Outcomes lists every finished probe in start order.
	Outcomes []Outcome
	// Err is set when the loop could not run (ProbeTCPParallel: a bad target, a socket
	// error); the counts are then empty.
	Err error
}

// MaxGap is the longest gap in service (0 if none).
func (r ProbeResult) MaxGap() time.Duration {
	var m time.Duration
	for _, g := range r.Gaps {
		if d := g.Duration(); d > m {
			m = d
		}
	}
	return m
}

// String summarises the result.
func (r ProbeResult) String() string {
	if r.Err != nil {
		return "probe failed: " + r.Err.Error()
	}
	return fmt.Sprintf("sent=%d ok=%d failed=%d gaps=%d max-gap=%v open=%v",
		r.Sent, r.OK, r.Failed, len(r.Gaps), r.MaxGap().Round(time.Millisecond), r.Open)
}

// Probe is a running probe loop.
type Probe struct {
	cancel context.CancelFunc
	done   chan ProbeResult
}

// StartProbe starts a probe loop in its own OS thread inside cfg.Netns. Stop it with Stop.
func StartProbe(cfg ProbeConfig) (*Probe, error) {
	if cfg.Netns == "" {
		cfg.Netns = lab.ClientNS
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	if cfg.Max == 0 {
		cfg.Max = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Max)
	p := &Probe{cancel: cancel, done: make(chan ProbeResult, 1)}
	entered := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		// The whole loop runs on one OS thread inside the namespace (nsthread.Do keeps
		// it locked there): every socket the loop opens is created in cfg.Netns.
		err := nsthread.DoNamed(cfg.Netns, func() error {
			close(entered)
			p.done <- probeLoop(ctx, cfg)
			return nil
		})
		if err != nil {
			// Either the namespace could not be entered (the loop never ran), or the
			// thread could not go back after it (the result is already in p.done; the
			// thread is thrown away, which is all that matters then).
			failed <- err
		}
	}()
	select {
	case <-entered:
	case err := <-failed:
		cancel()
		return nil, fmt.Errorf("probe: %w", err)
	}
	return p, nil
}

// Stop ends the loop and returns its result.
func (p *Probe) Stop() ProbeResult {
	p.cancel()
	return <-p.done
}

func probeLoop(ctx context.Context, cfg ProbeConfig) ProbeResult {
	if cfg.Mode == ProbeTCPParallel {
		r, err := parallelTCPLoop(ctx, cfg)
		r.Err = err
		return r
	}
	r := ProbeResult{Answers: map[string]int{}}
	var one func() bool
	switch cfg.Mode {
	case ProbeTCP:
		d := net.Dialer{Timeout: cfg.Timeout}
		one = func() bool {
			c, err := d.Dial("tcp", cfg.Target)
			if err != nil {
				return false
			}
			c.Close()
			return true
		}
	case ProbeHTTP:
		// By hand on a connection dialled from this thread: http.Transport would dial
		// from its own goroutines, outside the namespace.
		d := net.Dialer{Timeout: cfg.Timeout}
		req := []byte("GET / HTTP/1.1\r\nHost: " + cfg.Target + "\r\nConnection: close\r\n\r\n")
		one = func() bool {
			c, err := d.Dial("tcp", cfg.Target)
			if err != nil {
				return false
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(cfg.Timeout))
			if _, err := c.Write(req); err != nil {
				return false
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
			if a, err := ParseAnswer(string(b)); err == nil {
				r.Answers[a.Pod]++
			}
			return true
		}
	case ProbeUDP:
		conn, err := net.Dial("udp", cfg.Target)
		if err != nil {
			r.Open = true
			return r
		}
		defer conn.Close()
		var seq uint64
		buf := make([]byte, 2048)
		one = func() bool {
			seq++
			want := fmt.Sprintf("probe %d", seq)
			_ = conn.SetDeadline(time.Now().Add(cfg.Timeout))
			if _, err := conn.Write([]byte(want)); err != nil {
				return false
			}
			for {
				n, err := conn.Read(buf)
				if err != nil {
					return false
				}
				if string(buf[:n]) == want {
					return true
				}
				// A late echo of an earlier probe: keep reading until the deadline.
			}
		}
	}
	var outcomes []Outcome
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			res := gapsOf(outcomes, time.Now())
			res.Answers = r.Answers
			return res
		case <-tick.C:
		}
		start := time.Now()
		outcomes = append(outcomes, Outcome{Start: start, OK: one()})
	}
}
