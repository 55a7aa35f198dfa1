package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// bgpWait bounds the wait for the speakers' BGP sessions and the router's routes.
const bgpWait = 90 * time.Second

// setupBGP peers every node with the lab router over IPv4 (removed when the test ends) and
// advertises the lab pool, from the nodes whose hostname is in only (every node when
// empty). It waits until every node's session is Established and returns the
// advertisement (to move it with e.UpdateObject).
func setupBGP(e *framework.Env, only ...string) *v1beta1.BGPAdvertisement {
	e.T.Helper()
	e.CreateObject(framework.RouterPeer(e.Namespace, false, ""))
	adv := framework.BGPAdvertisement(e.Namespace, lab.SamplePoolName)
	adv.Spec.NodeSelectors = hostSelector(only...)
	e.CreateObject(adv)
	want := len(e.Lab.Nodes())
	e.Eventually(fmt.Sprintf("BGP sessions Established from all %d nodes", want), bgpWait, func() (bool, error) {
		peers, err := e.BGPNeighbors("ipv4")
		if err != nil {
			return false, err
		}
		up := 0
		for _, n := range e.Lab.Nodes() {
			if p, ok := peers[n.IP.String()]; ok && p.State == "Established" {
				up++
			}
		}
		return up == want, fmt.Errorf("%d Established", up)
	})
	return adv
}

// hostSelector selects the nodes by hostname (nil: every node).
func hostSelector(nodes ...string) []metav1.LabelSelector {
	if len(nodes) == 0 {
		return nil
	}
	return []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: corev1.LabelHostname, Operator: metav1.LabelSelectorOpIn, Values: nodes}}}}
}

// waitNexthops waits until the router's kernel routes ip/32 over exactly the given node
// addresses.
func waitNexthops(e *framework.Env, ip string, nodes ...lab.Node) {
	e.T.Helper()
	var want []string
	for _, n := range nodes {
		want = append(want, n.IP.String())
	}
	slices.Sort(want)
	p := netip.PrefixFrom(netip.MustParseAddr(ip), 32)
	e.Eventually(fmt.Sprintf("router next hops %v for %s", want, p), bgpWait, func() (bool, error) {
		rs, err := framework.KernelRoutes(lab.RouterNS, p)
		if err != nil {
			return false, err
		}
		got := framework.RouteGateways(rs)
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Errorf("next hops %v", got)
	})
}

// conntrackCount counts the conntrack entries in a node's namespace whose original
// destination is ip.
func conntrackCount(node, ip string) (int, error) {
	out, err := framework.Exec(node, "conntrack", "-L", "-d", ip)
	if err != nil {
		return 0, fmt.Errorf("conntrack -L in %s: %w: %s", node, err, out)
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "dst="+ip) {
			n++
		}
	}
	return n, nil
}

// TestBGPECMP: every node advertises the LB IP of a Service in the default mode (pods;
// no annotation) over BGP; the router spreads the client's connections over the three
// nodes by an L4 hash, each node's table carries them (its conntrack holds DNATed
// entries for the IP, kube-proxy's table has none), and every request is answered.
func TestBGPECMP(t *testing.T) {
	e := framework.Setup(t)
	setupBGP(e)
	spreadDeployment(e, "web", 3)
	ip := create(e, svc{name: "web", app: "web", mode: "-"})
	e.Eventually("ipMode Proxy on "+ip+" (the default mode)", 30*time.Second, func() (bool, error) {
		m := ipMode(e, "web", ip)
		return m != nil && *m == corev1.LoadBalancerIPModeProxy, nil
	})
	waitNexthops(e, ip, e.Lab.Nodes()...)
	e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
	for _, n := range e.Lab.Nodes() {
		if _, err := framework.Exec(n.Name, "conntrack", "-D", "-d", ip); err != nil {
			t.Logf("conntrack -D in %s: %v (no entries yet)", n.Name, err)
		}
	}
	spread, errs := framework.SpreadErrors(e.Context(), lab.ClientNS, url(ip, 8080), 300)
	t.Logf("answers per pod: %v", spread)
	for _, err := range errs {
		t.Errorf("%v", err)
	}
	if len(spread) < 3 {
		t.Errorf("answers from %d pods, want 3: %v", len(spread), spread)
	}
	for _, n := range e.Lab.Nodes() {
		c, err := conntrackCount(n.Name, ip)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := kubeProxyTable(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d conntrack entries for %s", n.Name, c, ip)
		if c == 0 {
			t.Errorf("no connection to %s entered through %s: the router's ECMP did not spread them", ip, n.Name)
		}
		if mentions(theirs, ip) {
			t.Errorf("kube-proxy's table on %s carries %s", n.Name, ip)
		}
	}
}

// keepConn is one HTTP/1.1 connection from the client kept open across requests.
type keepConn struct {
	c  net.Conn
	rd *bufio.Reader
	ip string
}

func dialKeep(ctx context.Context, ip string, port int, local *net.TCPAddr) (*keepConn, error) {
	d := lab.Dialer{Netns: lab.ClientNS, Timeout: 3 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	return &keepConn{c: c, rd: bufio.NewReader(c), ip: ip}, nil
}

// get sends one request on the connection and parses the workload's answer.
func (k *keepConn) get() (framework.Answer, error) {
	if err := k.c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return framework.Answer{}, err
	}
	if _, err := fmt.Fprintf(k.c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", k.ip); err != nil {
		return framework.Answer{}, err
	}
	resp, err := http.ReadResponse(k.rd, nil)
	if err != nil {
		return framework.Answer{}, err
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		return framework.Answer{}, err
	}
	if resp.StatusCode != http.StatusOK || resp.Close {
		return framework.Answer{}, fmt.Errorf("%s (close %v): %s", resp.Status, resp.Close, b.String())
	}
	return framework.ParseAnswer(b.String())
}

// abort closes the connection with an RST (SO_LINGER 0): no TIME_WAIT, so its source port
// can be used again at once.
func (k *keepConn) abort() {
	if tc, ok := k.c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	k.c.Close()
}

// TestMaglevAcrossNodes (issue 10, "a flow keeps its backend when the router's ECMP moves
// it"): the LB IP is first advertised by one node only, then only by another, so the
// router moves every flow from the first node to the second. For 12 flows (fixed client
// source ports, Services' pods on all three nodes) the backend the second node's table
// picks is the one the first node's picked: the Maglev tables are the same on every node
// and hash the same 5-tuple with the same seed. Each flow is opened (through the first
// node), answered, aborted with an RST, and after the move opened again from the same
// source port (through the second node). With 3 pods, random per-node choice (kube-proxy's)
// keeps all 12 with probability 3^-12.
//
// It does not keep one TCP connection open across the move: with externalTrafficPolicy
// Cluster a node masquerades flows to pods on other nodes with its own address, so after
// the move the pod would see the flow from another source and reset it (see "Not done
// yet" in docs/dataplane.md).
func TestMaglevAcrossNodes(t *testing.T) {
	e := framework.Setup(t)
	nodes := e.Lab.Nodes()
	first, second := nodes[0], nodes[1]
	adv := setupBGP(e, first.Name)
	spreadDeployment(e, "web", 3)
	ip := create(e, svc{name: "web", app: "web"})
	waitNexthops(e, ip, first)
	e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
	waitAllNodesServe(e, "web", ip, 120*time.Second)

	const flows = 12
	base := 41000 + int(time.Now().UnixNano()%1000)*10
	local := func(i int) *net.TCPAddr {
		return &net.TCPAddr{IP: net.ParseIP(lab.ClientIP), Port: base + i}
	}
	// open connects from a fixed source port, reads one answer and aborts; a port still
	// held (or a connect refused) is retried.
	open := func(i int) framework.Answer {
		var a framework.Answer
		e.Eventually(fmt.Sprintf("an answer on flow %d (source port %d)", i, base+i), 30*time.Second, func() (bool, error) {
			k, err := dialKeep(e.Context(), ip, 8080, local(i))
			if err != nil {
				return false, err
			}
			defer k.abort()
			a, err = k.get()
			return err == nil, err
		})
		return a
	}
	before := make([]framework.Answer, flows)
	pods := map[string]bool{}
	for i := range flows {
		before[i] = open(i)
		pods[before[i].Pod] = true
		if a := open(i); a.Pod != before[i].Pod {
			t.Fatalf("flow %d through one node: %s, then %s (a table is not deterministic)", i, before[i].Pod, a.Pod)
		}
	}
	if len(pods) < 2 {
		t.Fatalf("%d flows all went to %v: too few pods to tell tables apart", flows, pods)
	}
	c, err := conntrackCount(second.Name, ip)
	if err != nil {
		t.Fatal(err)
	}
	if c != 0 {
		t.Logf("%s already holds %d conntrack entries for %s (flushing them)", second.Name, c, ip)
		_, _ = framework.Exec(second.Name, "conntrack", "-D", "-d", ip)
	}

	e.UpdateObject(adv, func() { adv.Spec.NodeSelectors = hostSelector(second.Name) })
	waitNexthops(e, ip, second)
	for i := range flows {
		a := open(i)
		t.Logf("flow %d: %s (via %s), then %s (via %s)", i, before[i].Pod, first.Name, a.Pod, second.Name)
		if a.Pod != before[i].Pod {
			t.Errorf("flow %d (source port %d): backend %s through %s, %s through %s", i, base+i, before[i].Pod, first.Name, a.Pod, second.Name)
		}
	}
	if c, err := conntrackCount(second.Name, ip); err != nil || c == 0 {
		t.Errorf("no flow entered through %s after the move (%d entries, %v)", second.Name, c, err)
	}
}

// TestClientIPAffinity: with sessionAffinity ClientIP every connection of the client goes
// to one pod, whichever node the router's ECMP sends it through; a Service without
// affinity in front of the same pods spreads the same client's connections (so one pod
// is not just the only one answering).
func TestClientIPAffinity(t *testing.T) {
	e := framework.Setup(t)
	setupBGP(e)
	spreadDeployment(e, "web", 3)
	sticky := create(e, svc{name: "sticky", app: "web", affinity: true})
	spread := create(e, svc{name: "spread", app: "web"})
	waitNexthops(e, sticky, e.Lab.Nodes()...)
	waitNexthops(e, spread, e.Lab.Nodes()...)
	e.GetEventually(lab.ClientNS, url(sticky, 8080), 60*time.Second)
	waitAllNodesServe(e, "spread", spread, 120*time.Second)

	got, errs := framework.SpreadErrors(e.Context(), lab.ClientNS, url(sticky, 8080), 60)
	for _, err := range errs {
		t.Errorf("%v", err)
	}
	if len(got) != 1 {
		t.Errorf("sessionAffinity ClientIP: the client's 60 connections reached %d pods, want 1: %v", len(got), got)
	}
	ctl, errs := framework.SpreadErrors(e.Context(), lab.ClientNS, url(spread, 8080), 60)
	for _, err := range errs {
		t.Errorf("%v", err)
	}
	if len(ctl) < 2 {
		t.Errorf("without affinity the client's 60 connections reached %d pods: %v", len(ctl), ctl)
	}
	t.Logf("with ClientIP affinity %v; without %v", got, ctl)
}

// TestDualStack: a dual-stack Service gets an IPv4 and an IPv6 LB IP, both with ipMode
// Proxy, both in every node's table, and the client reaches the pods over each family
// with its own address preserved per family.
func TestDualStack(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "web", Replicas: 2})
	create(e, svc{name: "web", app: "web", dual: true})
	ips := e.WaitLoadBalancerIPs("web", 2, 60*time.Second)
	var v4, v6 string
	for _, ip := range ips {
		if strings.Contains(ip, ":") {
			v6 = ip
		} else {
			v4 = ip
		}
	}
	if v4 == "" || v6 == "" {
		t.Fatalf("LB IPs %v, want one IPv4 and one IPv6", ips)
	}
	for _, ip := range []string{v4, v6} {
		e.Eventually("ipMode Proxy on "+ip, 30*time.Second, func() (bool, error) {
			m := ipMode(e, "web", ip)
			return m != nil && *m == corev1.LoadBalancerIPModeProxy, nil
		})
		a := e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
		t.Logf("%s answered by %s on %s (client %s)", ip, a.Pod, a.Node, a.Client)
		for _, n := range e.Lab.Nodes() {
			e.Eventually("our table on "+n.Name+" carries "+ip, 30*time.Second, func() (bool, error) {
				ours, err := ourTable(n.Name)
				return err == nil && mentions(ours, ip), err
			})
		}
		got, errs := framework.SpreadErrors(e.Context(), lab.ClientNS, url(ip, 8080), 20)
		for _, err := range errs {
			t.Errorf("%s: %v", ip, err)
		}
		t.Logf("%s: %v", ip, got)
	}
	theirs, err := kubeProxyTable(e.Lab.Nodes()[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if mentions(theirs, v4) {
		t.Errorf("kube-proxy's IPv4 table carries %s", v4)
	}
	theirs6, err := framework.Exec(e.Lab.Nodes()[0].Name, "nft", "list", "table", "ip6", "kube-proxy")
	if err != nil {
		t.Fatal(err)
	}
	if mentions(theirs6, v6) {
		t.Errorf("kube-proxy's IPv6 table carries %s", v6)
	}
}

// TestGracefulScaleDown: scaling 3 → 1 with a 10 s grace period loses no request. The
// node agent keeps a terminating pod serving until its grace period ends; our tables stop
// sending new connections to it once its endpoint is no longer ready (existing ones
// continue), long before then. The client sends requests (each on a new connection, four
// at a time) from before the scale-down until the terminated pods are gone, and none may
// fail.
func TestGracefulScaleDown(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "web", Replicas: 3, GracePeriod: 10})
	ip := create(e, svc{name: "web", app: "web"})
	e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
	e.Eventually("answers from 3 pods", 60*time.Second, func() (bool, error) {
		got := framework.Spread(e.Context(), lab.ClientNS, url(ip, 8080), 30)
		return len(got) == 3 && got[""] == 0, fmt.Errorf("answers %v", got)
	})

	ctx, cancel := context.WithCancel(e.Context())
	type result struct {
		pods map[string]int
		errs []error
	}
	const workers = 4
	results := make(chan result, workers)
	for range workers {
		go func() {
			r := result{pods: map[string]int{}}
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
				a, err := framework.Get(rctx, lab.ClientNS, url(ip, 8080))
				rcancel()
				switch {
				case ctx.Err() != nil:
				case err != nil:
					r.errs = append(r.errs, fmt.Errorf("%s: %w", time.Now().Format("15:04:05.000"), err))
				default:
					r.pods[a.Pod]++
				}
			}
			results <- r
		}()
	}
	time.Sleep(time.Second)
	scaled := time.Now()
	e.Scale("web", 1)
	e.WaitDeploymentReady("web", 1)
	e.Eventually("only one pod left", 60*time.Second, func() (bool, error) {
		n := len(e.Pods("web"))
		return n == 1, fmt.Errorf("%d pods", n)
	})
	time.Sleep(time.Second)
	cancel()
	total := result{pods: map[string]int{}}
	for range workers {
		r := <-results
		for p, n := range r.pods {
			total.pods[p] += n
		}
		total.errs = append(total.errs, r.errs...)
	}
	sum := 0
	for _, n := range total.pods {
		sum += n
	}
	t.Logf("scale-down at %s; %d requests answered, per pod %v; %d failed", scaled.Format("15:04:05.000"), sum, total.pods, len(total.errs))
	for _, err := range total.errs {
		t.Errorf("request failed: %v", err)
	}
	if len(total.pods) < 3 {
		t.Errorf("answers from %d pods: the loop did not run before the scale-down", len(total.pods))
	}
}
