package lesson

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// The lesson's objects, in Config.Namespace.
const (
	App    = "nginx"  // the Deployment and its Service (label app=nginx)
	Client = "client" // the pod the in-cluster requests come from
)

// Config is what Run works with.
type Config struct {
	// Lab is the running lab (kubectl, kubeconfig, nodes).
	Lab *lab.Lab
	// Client is an admin client of the lab's API server.
	Client kubernetes.Interface
	// Namespace the lesson creates its objects in; it must exist. "default" for a person
	// (the printed commands then carry no -n), a fresh one in a test.
	Namespace string
	// Out receives the commands, their output and the checks.
	Out io.Writer
}

// Check is one thing the lesson verified.
type Check struct {
	Step string // the step's title
	OK   bool
	Msg  string
}

// Result lists the lesson's checks in order.
type Result struct {
	Checks []Check
}

// Failed returns the checks that did not hold.
func (r Result) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Run runs the lesson. It returns an error when a step it depends on fails; the checks
// run so far are in the Result either way.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = metav1.NamespaceDefault
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	w := &walk{cfg: cfg, ctx: ctx, env: append(os.Environ(),
		"KUBECONFIG="+cfg.Lab.AdminKubeconfig(),
		"PATH="+cfg.Lab.K8sBin()+string(os.PathListSeparator)+os.Getenv("PATH"))}
	err := w.run()
	return w.res, err
}

// walk is one run of the lesson.
type walk struct {
	cfg   Config
	ctx   context.Context
	env   []string
	res   Result
	step  int
	title string
}

func (w *walk) printf(format string, args ...any) { fmt.Fprintf(w.cfg.Out, format, args...) }

func (w *walk) heading(s string) {
	w.step++
	w.title = s
	w.printf("\n== %d. %s ==\n", w.step, s)
}

func (w *walk) say(format string, args ...any) { w.printf("# "+format+"\n", args...) }

func (w *walk) check(ok bool, format string, args ...any) bool {
	msg := fmt.Sprintf(format, args...)
	w.res.Checks = append(w.res.Checks, Check{Step: w.title, OK: ok, Msg: msg})
	if ok {
		w.printf("# OK: %s\n", msg)
	} else {
		w.printf("# NOT OK: %s\n", msg)
	}
	return ok
}

// sh prints a command as a user would type it, runs it and prints its output.
func (w *walk) sh(display string, argv ...string) (string, error) {
	w.printf("$ %s\n", display)
	cmd := exec.CommandContext(w.ctx, argv[0], argv[1:]...)
	cmd.Env = w.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	w.printf("%s", indent(out.String()))
	if err != nil {
		w.printf("  (exit: %v)\n", err)
	}
	return out.String(), err
}

func (w *walk) kubectl(args ...string) (string, error) {
	if w.cfg.Namespace != metav1.NamespaceDefault {
		args = append([]string{"-n", w.cfg.Namespace}, args...)
	}
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = a
		if strings.ContainsAny(a, `{}" `) {
			shown[i] = "'" + a + "'"
		}
	}
	return w.sh("kubectl "+strings.Join(shown, " "), append([]string{filepath.Join(w.cfg.Lab.K8sBin(), "kubectl")}, args...)...)
}

// do runs a kubectl command the lesson depends on: its failure ends the lesson.
func (w *walk) do(args ...string) error {
	if _, err := w.kubectl(args...); err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// show runs a kubectl command that only displays state; a failure is a failed check.
func (w *walk) show(args ...string) {
	_, err := w.kubectl(args...)
	if err != nil {
		w.check(false, "kubectl %s: %v", strings.Join(args, " "), err)
	}
}

// curl prints and runs curl inside namespace ns and returns the answer it parsed (zero
// if none).
func (w *walk) curl(ns, comment, url string) framework.Answer {
	display := fmt.Sprintf("ip netns exec %s curl -s -m 3 %s", ns, url)
	if comment != "" {
		display += "   # " + comment
	}
	body, _ := w.sh(display, "ip", "netns", "exec", ns, "curl", "-s", "-m", "3", "-w", "\n", url)
	a, _ := framework.ParseAnswer(body)
	return a
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}

func httpURL(ip string, port int32) string {
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(int(port))) + "/"
}

// waitAnswer polls url from inside ns (silently) until it answers three times in a row,
// up to d: kube-proxy programs a Service, and the speaker announces an IP, within about a
// second. It returns how long that took.
func (w *walk) waitAnswer(ns, url string, d time.Duration) (time.Duration, error) {
	start := time.Now()
	ok := 0
	err := framework.Poll(w.ctx, d, 100*time.Millisecond, func() (bool, error) {
		_, err := framework.Get(w.ctx, ns, url)
		if err != nil {
			ok = 0
			return false, err
		}
		ok++
		return ok == 3, nil
	})
	if err != nil {
		return time.Since(start), fmt.Errorf("%s from %s: %w", url, ns, err)
	}
	return time.Since(start), nil
}

// reachAll sends requests from ns until every pod in want has answered or 60 requests
// went by, and returns the answers per pod ("" counts errors).
func (w *walk) reachAll(ns, url string, want []string) map[string]int {
	got := map[string]int{}
	for i := 0; i < 60 && !coversAll(got, want); i++ {
		a, err := framework.Get(w.ctx, ns, url)
		got[a.Pod]++
		if err != nil && w.ctx.Err() != nil {
			break
		}
	}
	return got
}

func coversAll(got map[string]int, want []string) bool {
	for _, p := range want {
		if got[p] == 0 {
			return false
		}
	}
	return true
}

// spreadCheck checks that every running pod answered url from ns.
func (w *walk) spreadCheck(ns, url, what string) {
	pods := podNames(w.runningPods())
	got := w.reachAll(ns, url, pods)
	w.check(coversAll(got, pods) && got[""] == 0, "%s answered from all %d pods: %v", what, len(pods), got)
}

// eventually polls cond every 200 ms up to d and checks the outcome.
func (w *walk) eventually(d time.Duration, cond func() (bool, string)) bool {
	var msg string
	err := framework.Poll(w.ctx, d, 200*time.Millisecond, func() (bool, error) {
		var ok bool
		ok, msg = cond()
		return ok, nil
	})
	return w.check(err == nil, "%s", msg)
}

// endpoints returns the Service's ready endpoint addresses, sorted, and their nodes.
func (w *walk) endpoints() ([]string, map[string]bool, error) {
	list, err := w.cfg.Client.DiscoveryV1().EndpointSlices(w.cfg.Namespace).List(w.ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + App})
	if err != nil {
		return nil, nil, err
	}
	var addrs []string
	nodes := map[string]bool{}
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				addrs = append(addrs, e.Addresses...)
				if e.NodeName != nil {
					nodes[*e.NodeName] = true
				}
			}
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nodes, nil
}

// waitEndpoints waits (silently) until the Service has exactly n ready endpoints and the
// Deployment exactly n running pods.
func (w *walk) waitEndpoints(n int) ([]string, map[string]bool, error) {
	var addrs []string
	var nodes map[string]bool
	err := framework.Poll(w.ctx, 90*time.Second, 300*time.Millisecond, func() (bool, error) {
		var err error
		addrs, nodes, err = w.endpoints()
		if err != nil {
			return false, err
		}
		pods := w.runningPods()
		return len(addrs) == n && len(pods) == n, fmt.Errorf("%d ready endpoints, %d running pods", len(addrs), len(pods))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("waiting for %d ready endpoints of %s: %w", n, App, err)
	}
	return addrs, nodes, nil
}

// runningPods returns the Deployment's Running pods that are not terminating, by name.
func (w *walk) runningPods() []corev1.Pod {
	list, err := w.cfg.Client.CoreV1().Pods(w.cfg.Namespace).List(w.ctx, metav1.ListOptions{LabelSelector: "app=" + App})
	if err != nil {
		return nil
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// podIP returns the pod's IPv6 (is6) or IPv4 address.
func podIP(p *corev1.Pod, is6 bool) string {
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil && a.Is6() == is6 {
			return ip.IP
		}
	}
	return ""
}

func (w *walk) service() (*corev1.Service, error) {
	return w.cfg.Client.CoreV1().Services(w.cfg.Namespace).Get(w.ctx, App, metav1.GetOptions{})
}

// waitService polls the Service until pick finds what it waits for, up to d.
func (w *walk) waitService(d time.Duration, what string, pick func(*corev1.Service) string) (string, error) {
	var v string
	err := framework.Poll(w.ctx, d, 200*time.Millisecond, func() (bool, error) {
		svc, err := w.service()
		if err != nil {
			return false, err
		}
		v = pick(svc)
		return v != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("service %s: no %s: %w", App, what, err)
	}
	return v, nil
}

func ingressIP(is6 bool) func(*corev1.Service) string {
	return func(s *corev1.Service) string {
		for _, in := range s.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil && a.Is6() == is6 {
				return in.IP
			}
		}
		return ""
	}
}

func clusterIP(is6 bool) func(*corev1.Service) string {
	return func(s *corev1.Service) string {
		for _, ip := range s.Spec.ClusterIPs {
			if a, err := netip.ParseAddr(ip); err == nil && a.Is6() == is6 {
				return ip
			}
		}
		return ""
	}
}

func (w *walk) waitPodRunning(name string) (*corev1.Pod, error) {
	var pod *corev1.Pod
	err := framework.Poll(w.ctx, 60*time.Second, 300*time.Millisecond, func() (bool, error) {
		p, err := w.cfg.Client.CoreV1().Pods(w.cfg.Namespace).Get(w.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		return p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" && len(p.Status.PodIPs) > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pod %s not Running: %w", name, err)
	}
	return pod, nil
}

func (w *walk) run() error {
	w.heading("The cluster")
	w.say("%d nodes, each a network namespace with the lab's node agent and kube-proxy (nftables mode).", len(w.cfg.Lab.Nodes()))
	w.show("get", "nodes", "-o", "wide")

	client, err := w.clusterIPStep()
	if err != nil {
		return err
	}
	if err := w.scaleStep(client); err != nil {
		return err
	}
	if err := w.nodePortStep(false); err != nil {
		return err
	}
	if err := w.loadBalancerStep(); err != nil {
		return err
	}
	return w.dualStackStep(client)
}

// clusterIPStep: a 3-replica Deployment behind a ClusterIP on 8080 → 80, reached from a
// client pod; the backends see the client pod's own address (no SNAT inside the cluster).
func (w *walk) clusterIPStep() (*corev1.Pod, error) {
	w.heading("A Deployment behind a ClusterIP Service")
	if err := w.do("create", "deployment", App, "--image=nginx", "--replicas=3", "--port=80"); err != nil {
		return nil, err
	}
	if err := w.do("rollout", "status", "deployment/"+App, "--timeout=90s"); err != nil {
		return nil, err
	}
	w.say("the node agent runs each Pod in its own netns with a built-in HTTP server on its container ports")
	w.show("get", "pods", "-o", "wide")
	if err := w.do("expose", "deployment", App, "--port=8080", "--target-port=80"); err != nil {
		return nil, err
	}
	eps, _, err := w.waitEndpoints(3)
	if err != nil {
		return nil, err
	}
	w.show("get", "service", App)
	w.show("get", "endpoints", App)
	var podIPs []string
	for _, p := range w.runningPods() {
		podIPs = append(podIPs, p.Status.PodIP)
	}
	slices.Sort(podIPs)
	w.check(slices.Equal(eps, podIPs), "the endpoints %v are the pods' IPs %v", eps, podIPs)

	cip, err := w.waitService(10*time.Second, "ClusterIP", clusterIP(false))
	if err != nil {
		return nil, err
	}
	w.say("now curl the ClusterIP from another pod: a client pod, whose netns the node agent names deterministically")
	if err := w.do("run", Client, "--image=busybox", "--restart=Never", "--", "sleep", "3600"); err != nil {
		return nil, err
	}
	client, err := w.waitPodRunning(Client)
	if err != nil {
		return nil, err
	}
	ns := lab.PodNetns(client)
	u := httpURL(cip, 8080)
	w.say("waiting for kube-proxy on %s to program the Service ...", client.Spec.NodeName)
	if _, err := w.waitAnswer(ns, u, 30*time.Second); err != nil {
		return nil, err
	}
	var first framework.Answer
	for i := 0; i < 6; i++ {
		if a := w.curl(ns, "inside pod "+Client, u); first.Pod == "" {
			first = a
		}
	}
	w.clientAddrCheck(first, client, false)
	w.spreadCheck(ns, u, "the ClusterIP "+cip)
	return client, nil
}

// clientAddrCheck checks that a backend saw the client pod's own address of the family.
func (w *walk) clientAddrCheck(a framework.Answer, client *corev1.Pod, is6 bool) {
	host, _, _ := net.SplitHostPort(a.Client)
	want := podIP(client, is6)
	w.check(host != "" && host == want, "the backend saw the client pod's own address %s (no SNAT inside the cluster): %q", want, a.Client)
}

// scaleStep: scaling to 1 shrinks the endpoints and the traffic to the survivor; scaling
// back to 3 brings new endpoints that all take traffic.
func (w *walk) scaleStep(client *corev1.Pod) error {
	w.heading("Scaling: the endpoints follow the ready pods")
	ns := lab.PodNetns(client)
	svc, err := w.service()
	if err != nil {
		return err
	}
	u := httpURL(svc.Spec.ClusterIP, 8080)
	if err := w.do("scale", "deployment", App, "--replicas=1"); err != nil {
		return err
	}
	one, _, err := w.waitEndpoints(1)
	if err != nil {
		return err
	}
	w.show("get", "endpoints", App)
	w.say("the removed pods are Terminating: they keep serving during their grace period, but are no longer endpoints")
	w.show("get", "pods", "-l", "app="+App, "-o", "wide")
	survivor := w.runningPods()
	if !w.check(len(survivor) == 1 && survivor[0].Status.PodIP == one[0],
		"the one endpoint %v is the one running pod %v", one, podNames(survivor)) {
		return errors.New("scaling to 1 did not leave one running pod as the endpoint")
	}
	// kube-proxy follows within its sync period.
	w.eventually(30*time.Second, func() (bool, string) {
		got := framework.Spread(w.ctx, ns, u, 10)
		return got[survivor[0].Name] == 10, fmt.Sprintf("only %s answers, 10 times in a row: %v", survivor[0].Name, got)
	})
	if err := w.do("scale", "deployment", App, "--replicas=3"); err != nil {
		return err
	}
	three, _, err := w.waitEndpoints(3)
	if err != nil {
		return err
	}
	w.say("new pods, new endpoint IPs:")
	w.show("get", "endpoints", App)
	w.check(slices.Contains(three, one[0]), "the survivor %s is still an endpoint: %v", one[0], three)
	pods := podNames(w.runningPods())
	w.eventually(30*time.Second, func() (bool, string) {
		got := w.reachAll(ns, u, pods)
		return coversAll(got, pods) && got[""] == 0, fmt.Sprintf("all %d pods answer again: %v", len(pods), got)
	})
	return nil
}

// nodePortStep: with 2 replicas on 3 nodes at least one node has no pod; the NodePort
// answers the client behind the router on every node's address of the family anyway.
func (w *walk) nodePortStep(is6 bool) error {
	family := "IPv4"
	if is6 {
		family = "IPv6"
	}
	var podNodes map[string]bool
	if !is6 {
		w.heading("NodePort: every node forwards, even one without a pod")
		w.say("scale to 2 so that one of the 3 nodes has no %s pod", App)
		if err := w.do("scale", "deployment", App, "--replicas=2"); err != nil {
			return err
		}
		var err error
		if _, podNodes, err = w.waitEndpoints(2); err != nil {
			return err
		}
		if err := w.do("patch", "service", App, "-p", `{"spec":{"type":"NodePort"}}`); err != nil {
			return err
		}
		w.show("get", "service", App)
	} else {
		_, podNodes, _ = w.endpoints()
	}
	svc, err := w.service()
	if err != nil {
		return err
	}
	np := svc.Spec.Ports[0].NodePort
	if !w.check(np != 0, "the Service has a nodePort (%d)", np) {
		return errors.New("no nodePort allocated")
	}
	pods := podNames(w.runningPods())
	var bad []string
	for _, n := range w.cfg.Lab.Nodes() {
		ip := n.IP.String()
		if is6 {
			ip = n.IP6.String()
		}
		u := httpURL(ip, np)
		if _, err := w.waitAnswer(lab.ClientNS, u, 30*time.Second); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		comment := n.Name + ", has a pod"
		if !podNodes[n.Name] {
			comment = n.Name + ", NO " + App + " pod: kube-proxy forwards to another node"
		}
		if a := w.curl(lab.ClientNS, comment, u); !slices.Contains(pods, a.Pod) {
			bad = append(bad, fmt.Sprintf("%s: answer from %q, not one of %v", n.Name, a.Pod, pods))
		}
	}
	nodes := len(w.cfg.Lab.Nodes())
	// With 2 pods on 3 or more nodes, some node has none: the step shows it forwards.
	podless := nodes - len(podNodes)
	w.check(len(bad) == 0 && (is6 || nodes < 3 || podless > 0),
		"NodePort %d answered the client on every node's %s address, %d of them without a pod (failures: %v)",
		np, family, podless, bad)
	return nil
}

// loadBalancerStep: type LoadBalancer gets an IP from the lab's pool, the client reaches
// every pod through it, and the router learned it at one node's MAC.
func (w *walk) loadBalancerStep() error {
	w.heading("LoadBalancer: an external IP from Loadstone's pool")
	if err := w.do("scale", "deployment", App, "--replicas=3"); err != nil {
		return err
	}
	if _, _, err := w.waitEndpoints(3); err != nil {
		return err
	}
	w.show("get", "ipaddresspools,l2advertisements")
	if err := w.do("patch", "service", App, "-p", `{"spec":{"type":"LoadBalancer"}}`); err != nil {
		return err
	}
	first, _ := w.kubectl("get", "service", App)
	if strings.Contains(first, "<pending>") {
		w.say("EXTERNAL-IP is <pending>: waiting for Loadstone's controller to assign one ...")
	}
	ip, err := w.waitService(60*time.Second, "EXTERNAL-IP", ingressIP(false))
	if err != nil {
		return err
	}
	if strings.Contains(first, "<pending>") {
		w.show("get", "service", App)
	}
	w.lbTraffic(ip)
	w.show("get", "events", "--field-selector", "involvedObject.kind=Service,involvedObject.name="+App)
	return nil
}

// dualStackStep: PreferDualStack adds an IPv6 ClusterIP and an IPv6 EXTERNAL-IP; the
// ClusterIP, every node's IPv6 NodePort and the IPv6 LoadBalancer IP answer.
func (w *walk) dualStackStep(client *corev1.Pod) error {
	w.heading("Dual-stack: IPv6 for the same Service")
	if err := w.do("patch", "service", App, "-p", `{"spec":{"ipFamilyPolicy":"PreferDualStack"}}`); err != nil {
		return err
	}
	cip6, err := w.waitService(15*time.Second, "IPv6 ClusterIP", clusterIP(true))
	if err != nil {
		return err
	}
	ip6, err := w.waitService(60*time.Second, "IPv6 EXTERNAL-IP", ingressIP(true))
	if err != nil {
		return err
	}
	w.show("get", "service", App)
	ns := lab.PodNetns(client)
	u := httpURL(cip6, 8080)
	if _, err := w.waitAnswer(ns, u, 30*time.Second); err != nil {
		w.check(false, "the IPv6 ClusterIP %s answers the client pod: %v", cip6, err)
	} else {
		w.clientAddrCheck(w.curl(ns, "inside pod "+Client+", over IPv6", u), client, true)
		w.spreadCheck(ns, u, "the IPv6 ClusterIP "+cip6)
	}
	if err := w.nodePortStep(true); err != nil {
		return err
	}
	w.say("the router finds the owner of %s with IPv6 neighbour discovery", ip6)
	w.lbTraffic(ip6)
	return nil
}

// lbTraffic checks a load-balancer IP: from the lab pool, answering the client from every
// pod, and known to the router at the MAC of one node's eth0.
func (w *walk) lbTraffic(ip string) {
	addr := netip.MustParseAddr(ip)
	pool := netip.MustParsePrefix(lab.PoolCIDR)
	if addr.Is6() {
		pool = netip.MustParsePrefix(lab.PoolCIDR6)
	}
	w.check(pool.Contains(addr), "EXTERNAL-IP %s is from %s (%s)", ip, lab.SamplePoolName, pool)
	w.say("the client reaches %s through the router; the router finds the node that answers ARP/NDP for it", ip)
	u := httpURL(ip, 8080)
	d, err := w.waitAnswer(lab.ClientNS, u, 60*time.Second)
	if !w.check(err == nil, "EXTERNAL-IP %s answers the client (after %.1f s)", ip, d.Seconds()) {
		return
	}
	for i := 0; i < 6; i++ {
		w.curl(lab.ClientNS, "", u)
	}
	w.spreadCheck(lab.ClientNS, u, "EXTERNAL-IP "+ip)

	out, _ := w.sh("ip netns exec "+lab.RouterNS+" ip neigh show "+ip, "ip", "netns", "exec", lab.RouterNS, "ip", "neigh", "show", ip)
	f := strings.Fields(out)
	mac := ""
	if i := slices.Index(f, "lladdr"); i >= 0 && i+1 < len(f) {
		mac = f[i+1]
	}
	owner := ""
	for _, n := range w.cfg.Lab.Nodes() {
		if m, err := framework.LinkMAC(n.Name, lab.NodeLink); err == nil && m == mac {
			owner = n.Name
		}
	}
	w.check(owner != "", "the router has %s at %q, the %s of node %q: that node's speaker announces it", ip, mac, lab.NodeLink, owner)
}
