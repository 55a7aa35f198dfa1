package dataplane

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// TestDeadNodeDropped (issue 10, "dead nodes"): pods on all three nodes behind an
// L2-announced Service in mode pods with externalTrafficPolicy Cluster; the client opens a
// new TCP connection every 5 ms while the link of a node that holds pods (not the
// announcing one) is cut silently. Connects that the announcing node's Maglev table sends
// to the cut node's pods fail until membership declares the node dead and every table
// drops its pods; after that every connect succeeds. kube-proxy's path would keep failing
// until the endpoints controller marks the pods unready (the node lifecycle's grace
// period, tens of seconds: B10 measures it), so the bound below separates the two; it is
// a bound on waiting, not a speed target.
func TestDeadNodeDropped(t *testing.T) {
	e := framework.Setup(t)
	spreadDeployment(e, "web", 6)
	ip := create(e, svc{name: "web", app: "web"})
	e.Eventually("ipMode Proxy on "+ip, 30*time.Second, func() (bool, error) {
		m := ipMode(e, "web", ip)
		return m != nil && *m == corev1.LoadBalancerIPModeProxy, nil
	})
	// 60 s is a generous bound for "failures stop at all" (kube-proxy's path would not
	// stop before the endpoints controller acts), not a target: how soon they stop is
	// B10's measurement, and the test checks the mechanism (the announcer's table drops
	// the dead node's pods) below.
	r := deadNodeRun(e, "web", ip, 60*time.Second, 3*time.Second)
	t.Logf("cut %s (announcer %s) at %s: %d connects failed before the cut, %d after; failures per second after the cut: %v; failure stretches: %v; router entry: %v",
		r.cut, r.announcer, r.t0.Format("15:04:05.000"), r.preFailed, r.failed, r.perSecond, r.bursts, r.routerPath)
	if len(r.cutAddrs) == 0 {
		t.Fatalf("no endpoint of web on the cut node %s", r.cut)
	}
	for _, a := range r.cutAddrs {
		if !mentions(r.tableBefore, a) {
			t.Errorf("before the cut, the announcer %s's table does not carry %s's pod %s", r.announcer, r.cut, a)
		}
		if mentions(r.tableAfter, a) {
			t.Errorf("with %s dead, the announcer %s's table still carries its pod %s", r.cut, r.announcer, a)
		}
	}
	if r.preFailed > 0 {
		t.Errorf("%d connects failed in the steady state before the cut", r.preFailed)
	}
	if !r.stopped {
		t.Fatalf("connects still failing %v after cutting %s (last failure %v after the cut): the dead node's pods stayed in the tables",
			r.watched.Round(time.Millisecond), r.cut, r.lastFail.Round(time.Millisecond))
	}
	if r.quietOK == 0 {
		t.Fatalf("no connect succeeded after the failures stopped")
	}
	t.Logf("failures stopped %v after the cut (start of the last failed connect); then %d connects in a row succeeded",
		r.lastFail.Round(time.Millisecond), r.quietOK)
	e.RestoreLink(r.cut)
	// The node comes back: its pods serve again (membership alive, endpoints ready), so
	// the tests after this one find the lab whole.
	waitAllNodesServe(e, "web", ip, 120*time.Second)
}

// spreadDeployment creates a Deployment of the echo workload (label app=name) whose
// replicas spread evenly over the nodes, and waits until they are ready and every node
// holds at least one.
func spreadDeployment(e *framework.Env, name string, replicas int32) {
	e.T.Helper()
	labels := map[string]string{"app": name}
	grace := int64(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: name, Image: "lab/echo",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}}}},
					TerminationGracePeriodSeconds: &grace,
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
				},
			},
		},
	}
	if _, err := e.Client.AppsV1().Deployments(e.Namespace).Create(e.Context(), dep, metav1.CreateOptions{}); err != nil {
		e.T.Fatalf("create deployment %s: %v", name, err)
	}
	e.WaitDeploymentReady(name, replicas)
	perNode := map[string]int{}
	for _, p := range e.RunningPods(name) {
		perNode[p.Spec.NodeName]++
	}
	for _, n := range e.Lab.Nodes() {
		if perNode[n.Name] == 0 {
			e.T.Fatalf("no pod of %s on %s: %v", name, n.Name, perNode)
		}
	}
}

// announcer returns the only node whose ServiceL2Status lists ip for service (an error
// when none or several do).
func announcer(ctx context.Context, c client.Client, ns, service, ip string) (string, error) {
	var l v1beta1.ServiceL2StatusList
	if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
		return "", err
	}
	var nodes []string
	for _, s := range l.Items {
		if s.Status.ServiceName == service && slices.Contains(s.Status.IPs, ip) {
			nodes = append(nodes, s.Status.Node)
		}
	}
	if len(nodes) != 1 {
		return "", fmt.Errorf("ServiceL2Status of %s lists %s on %v, want one node", service, ip, nodes)
	}
	return nodes[0], nil
}

// waitAllNodesServe waits until new connections to ip reach pods on every node (each GET
// is a new connection with its own source port, so the tables spread them), which shows
// that every node's pods are ready and, in mode pods, alive in membership.
func waitAllNodesServe(e *framework.Env, service, ip string, timeout time.Duration) {
	e.T.Helper()
	want := len(e.Lab.Nodes())
	e.Eventually(fmt.Sprintf("answers from pods on all %d nodes through %s", want, ip), timeout, func() (bool, error) {
		eps, err := e.ReadyEndpoints(e.Context(), service)
		if err != nil {
			return false, err
		}
		if len(eps.Nodes) < want {
			return false, fmt.Errorf("ready endpoints only on %v", eps.Nodes)
		}
		seen := map[string]bool{}
		var last error
		for i := 0; i < 40 && len(seen) < want; i++ {
			ctx, cancel := context.WithTimeout(e.Context(), time.Second)
			a, err := framework.Get(ctx, lab.ClientNS, url(ip, 8080))
			cancel()
			if err != nil {
				last = err
				continue
			}
			seen[a.Node] = true
		}
		if len(seen) < want {
			if last == nil {
				return false, fmt.Errorf("answers only from %v", seen)
			}
			return false, fmt.Errorf("answers only from %v (last error: %w)", seen, last)
		}
		return true, nil
	})
}

// routerMAC is the MAC of the router's usable neighbour entry for ip ("" when none).
func routerMAC(ip string) (string, error) {
	out, err := framework.Exec(lab.RouterNS, "ip", "-j", "neigh", "show", "to", ip)
	if err != nil {
		return "", err
	}
	var ns []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		return "", fmt.Errorf("ip -j neigh: %w: %s", err, out)
	}
	for _, n := range ns {
		if n.LLAddr != "" && !slices.Contains(n.State, "FAILED") && !slices.Contains(n.State, "INCOMPLETE") {
			return n.LLAddr, nil
		}
	}
	return "", nil
}

// liveProbe starts a TCP connect to a target every liveProbeInterval (framework.ProbeTCPParallel,
// 50 ms timeout) and makes the outcomes readable while it runs: it chains probe windows of
// half a second, each started before the previous one stops, so no connect start goes
// unrecorded at a window's end.
type liveProbe struct {
	mu       sync.Mutex
	outcomes []framework.Outcome
	err      error
	stop     chan struct{}
	done     chan struct{}
}

const liveProbeTimeout = 50 * time.Millisecond

// liveProbeInterval between connect starts. Not 1 ms: a closed connection keeps its client
// port in TIME_WAIT for 60 s, so 1000 connects a second from one address to one IP:port
// use up the ports connect() prefers within about 14 s (then connects fail at the client),
// and a reused port whose earlier SYN went to the dead node's pod matches that SYN's
// conntrack entry (DNAT to the dead pod, 120 s) instead of the new table.
const liveProbeInterval = 5 * time.Millisecond

func startLiveProbe(target string) (*liveProbe, error) {
	cfg := framework.ProbeConfig{Target: target, Mode: framework.ProbeTCPParallel, Interval: liveProbeInterval, Timeout: liveProbeTimeout, Max: time.Minute}
	cur, err := framework.StartProbe(cfg)
	if err != nil {
		return nil, err
	}
	p := &liveProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				p.add(cur.Stop(), time.Time{})
				return
			case <-time.After(500 * time.Millisecond):
			}
			nextStart := time.Now()
			next, err := framework.StartProbe(cfg)
			if err != nil {
				p.add(cur.Stop(), time.Time{})
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
				return
			}
			// Longer than a connect's timeout: the connects cur started before nextStart
			// have finished when it stops; next covers those after.
			time.Sleep(liveProbeTimeout + 30*time.Millisecond)
			p.add(cur.Stop(), nextStart)
			cur = next
		}
	}()
	return p, nil
}

// add records a window's outcomes that started before until (all when until is zero).
func (p *liveProbe) add(r framework.ProbeResult, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Err != nil && p.err == nil {
		p.err = r.Err
	}
	for _, o := range r.Outcomes {
		if until.IsZero() || o.Start.Before(until) {
			p.outcomes = append(p.outcomes, o)
		}
	}
}

// snapshot returns the outcomes recorded so far, in start order, and the first error.
func (p *liveProbe) snapshot() ([]framework.Outcome, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.outcomes), p.err
}

// Stop ends the probe and returns every outcome.
func (p *liveProbe) Stop() ([]framework.Outcome, error) {
	close(p.stop)
	<-p.done
	return p.snapshot()
}

// deadRun is one link cut of a node holding backends.
type deadRun struct {
	announcer, cut string
	t0             time.Time
	// preFailed counts failed connects in the steady state before the cut.
	preFailed int
	// failed counts failed connects after the cut; perSecond splits them by the second
	// (after the cut) they started in, up to the last failure.
	failed    int
	perSecond []int
	// lastFail: the cut → the start of the last failed connect (0 when none failed).
	lastFail time.Duration
	// stopped: failures stopped within the cap (then quietOK connects in a row succeeded
	// after the last failure, for at least the quiet time).
	stopped bool
	quietOK int
	// watched is how long the probe ran after the cut.
	watched time.Duration
	// bursts lists the stretches of failed connects after the cut ("from-to ms: n");
	// routerPath the router's neighbour entry for the IP during the run ("after: node").
	bursts, routerPath []string
	// cutAddrs are the cut node's endpoint addresses; tableBefore and tableAfter list the
	// announcer's table inet loadstone before the cut and at the end of the run.
	cutAddrs                []string
	tableBefore, tableAfter string
}

// endpointsOn lists the endpoint addresses of a Service on a node.
func endpointsOn(e *framework.Env, service, node string) []string {
	e.T.Helper()
	l, err := e.Client.DiscoveryV1().EndpointSlices(e.Namespace).List(e.Context(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		e.T.Fatal(err)
	}
	var out []string
	for _, s := range l.Items {
		for _, ep := range s.Endpoints {
			if ep.NodeName != nil && *ep.NodeName == node {
				out = append(out, ep.Addresses...)
			}
		}
	}
	return out
}

// deadNodeRun waits for a steady state (one announcer; pods on every node answer through
// ip), cuts the link of a node that holds pods and is not the announcer while the client
// opens a new TCP connection every liveProbeInterval, and watches until no connect has failed
// for quiet, or until capAfter passed since the cut without such a quiet stretch after
// the last failure within it (stopped is then false). The link stays cut (the caller
// restores it; the test's cleanup does anyway).
func deadNodeRun(e *framework.Env, service, ip string, capAfter, quiet time.Duration) deadRun {
	e.T.Helper()
	waitAllNodesServe(e, service, ip, 180*time.Second)
	c := e.LoadstoneClient()
	var r deadRun
	e.Eventually("one announcer of "+ip, 60*time.Second, func() (bool, error) {
		var err error
		r.announcer, err = announcer(e.Context(), c, e.Namespace, service, ip)
		return err == nil, err
	})
	// The router must send the traffic to the announcer (after a cut, the cut node may
	// have announced the IP for a moment on its return).
	mac, err := framework.LinkMAC(r.announcer, lab.NodeLink)
	if err != nil {
		e.T.Fatal(err)
	}
	e.Eventually("the router resolves "+ip+" to "+r.announcer+"'s "+mac, 60*time.Second, func() (bool, error) {
		_, gerr := framework.Get(e.Context(), lab.ClientNS, url(ip, 8080))
		got, err := routerMAC(ip)
		if err != nil {
			return false, err
		}
		if !strings.EqualFold(got, strings.TrimSpace(mac)) {
			if gerr != nil {
				return false, fmt.Errorf("router has %q (GET: %w)", got, gerr)
			}
			return false, fmt.Errorf("router has %q", got)
		}
		return true, nil
	})
	eps, err := e.ReadyEndpoints(e.Context(), service)
	if err != nil {
		e.T.Fatal(err)
	}
	for _, n := range e.Lab.Nodes() {
		if n.Name != r.announcer && eps.Nodes[n.Name] {
			r.cut = n.Name
			break
		}
	}
	if r.cut == "" {
		e.T.Fatalf("no node other than the announcer %s holds ready endpoints of %s: %v", r.announcer, service, eps.Nodes)
	}
	r.cutAddrs = endpointsOn(e, service, r.cut)
	r.tableBefore, _ = ourTable(r.announcer)
	macs := map[string]string{}
	for _, n := range e.Lab.Nodes() {
		if m, err := framework.LinkMAC(n.Name, lab.NodeLink); err == nil {
			macs[strings.ToLower(strings.TrimSpace(m))] = n.Name
		}
	}
	p, err := startLiveProbe(net.JoinHostPort(ip, strconv.Itoa(8080)))
	if err != nil {
		e.T.Fatal(err)
	}
	time.Sleep(time.Second) // steady state, recorded
	r.t0 = time.Now()
	e.CutLink(r.cut)
	// Where the router sends the IP during the run (for the log: a change is an L2
	// handover, which would show as failures too).
	routerDone := make(chan struct{})
	routerStopped := make(chan struct{})
	go func() {
		defer close(routerStopped)
		last := "?"
		for {
			m, err := routerMAC(ip)
			if err == nil && m != last {
				last = m
				r.routerPath = append(r.routerPath, fmt.Sprintf("%v:%s", time.Since(r.t0).Round(10*time.Millisecond), cmp.Or(macs[strings.ToLower(m)], m)))
			}
			select {
			case <-routerDone:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	for {
		time.Sleep(100 * time.Millisecond)
		now := time.Now()
		out, err := p.snapshot()
		if err != nil {
			break
		}
		last := r.t0
		for i := len(out) - 1; i >= 0; i-- {
			if !out[i].OK && !out[i].Start.Before(r.t0) {
				last = out[i].Start
				break
			}
		}
		// Connects of the last liveProbeTimeout may still be in flight.
		if now.Sub(last) >= quiet+liveProbeTimeout || now.Sub(r.t0) >= capAfter+quiet {
			break
		}
	}
	out, err := p.Stop()
	r.watched = time.Since(r.t0)
	close(routerDone)
	<-routerStopped
	r.tableAfter, _ = ourTable(r.announcer)
	if err != nil {
		e.T.Fatalf("probe: %v", err)
	}
	r.summarise(out, capAfter, quiet)
	return r
}

// summarise fills the counts of r from the probe's outcomes.
func (r *deadRun) summarise(out []framework.Outcome, capAfter, quiet time.Duration) {
	var last time.Time
	for _, o := range out {
		switch {
		case o.Start.Before(r.t0):
			if !o.OK {
				r.preFailed++
			}
		case !o.OK:
			r.failed++
			last = o.Start
		}
	}
	if !last.IsZero() {
		r.lastFail = last.Sub(r.t0)
		r.perSecond = make([]int, int(r.lastFail/time.Second)+1)
		for _, o := range out {
			if !o.OK && !o.Start.Before(r.t0) {
				r.perSecond[int(o.Start.Sub(r.t0)/time.Second)]++
			}
		}
	}
	var b struct {
		from, to time.Time
		n        int
	}
	flush := func() {
		if b.n > 0 {
			r.bursts = append(r.bursts, fmt.Sprintf("%d-%dms:%d", b.from.Sub(r.t0).Milliseconds(), b.to.Sub(r.t0).Milliseconds(), b.n))
		}
	}
	for _, o := range out {
		if o.OK || o.Start.Before(r.t0) {
			continue
		}
		if b.n > 0 && o.Start.Sub(b.to) > 200*time.Millisecond {
			flush()
			b.n = 0
		}
		if b.n == 0 {
			b.from = o.Start
		}
		b.to = o.Start
		b.n++
	}
	flush()
	from := r.t0
	if !last.IsZero() {
		from = last
	}
	var end time.Time
	for _, o := range out {
		if o.Start.After(from) {
			r.quietOK++
			end = o.Start
		}
	}
	r.stopped = r.lastFail < capAfter && end.Sub(from) >= quiet-2*liveProbeTimeout && r.quietOK > 0
}

// perSecondString formats per-second failure counts ("12 340 0 …").
func perSecondString(c []int) string {
	s := make([]string, len(c))
	for i, n := range c {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " ")
}
