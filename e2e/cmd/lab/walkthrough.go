package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// walk prints each command of the lesson and what it shows.
type walk struct {
	l      *lab.Lab
	cs     *kubernetes.Clientset
	env    []string
	notes  []string // what is missing, repeated at the end
	step   int
	failed int
}

func cmdWalkthrough(ctx context.Context, cfg lab.Config) error {
	l, err := lab.New(cfg)
	if err != nil {
		return err
	}
	fmt.Println("== Bringing the lab up (a real cluster in network namespaces) ==")
	if err := l.Up(ctx); err != nil {
		return fmt.Errorf("%w\nlogs: %s/logs; remove the lab with `make lab-down`", err, l.Dir())
	}
	cs, err := l.AdminClient()
	if err != nil {
		return err
	}
	w := &walk{l: l, cs: cs, env: append(os.Environ(),
		"KUBECONFIG="+l.AdminKubeconfig(),
		"PATH="+l.K8sBin()+string(os.PathListSeparator)+os.Getenv("PATH"))}
	for part, why := range l.State().Missing {
		w.notes = append(w.notes, fmt.Sprintf("%s is not running: %s", part, why))
	}
	if _, ok := l.State().Missing["nodeagent"]; ok {
		return errors.New("the node agent is missing, so no Pod can run: the lesson needs it")
	}
	err = w.run(ctx)
	fmt.Println()
	if len(w.notes) > 0 {
		fmt.Println("== What is not there yet ==")
		for _, n := range w.notes {
			fmt.Println("  - " + strings.ReplaceAll(n, "\n", "\n    "))
		}
		fmt.Println()
	}
	printUsage(os.Stdout, l)
	if err == nil && w.failed > 0 {
		// The lab stays up for a look, but make must not report success.
		err = fmt.Errorf("%d check(s) of the walkthrough failed (listed above)", w.failed)
	}
	return err
}

func (w *walk) title(s string) {
	w.step++
	fmt.Printf("\n== %d. %s ==\n", w.step, s)
}

func (w *walk) say(format string, args ...any) { fmt.Printf("# "+format+"\n", args...) }

// sh prints a command as a user would type it, runs it and prints its output.
func (w *walk) sh(display string, argv ...string) (string, error) {
	fmt.Printf("$ %s\n", display)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = w.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s := out.String()
	fmt.Print(indent(s))
	if err != nil {
		fmt.Printf("  (exit: %v)\n", err)
	}
	return s, err
}

func (w *walk) kubectl(args ...string) (string, error) {
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = a
		if strings.ContainsAny(a, `{}" `) {
			shown[i] = "'" + a + "'"
		}
	}
	return w.sh("kubectl "+strings.Join(shown, " "), append([]string{filepath.Join(w.l.K8sBin(), "kubectl")}, args...)...)
}

// do runs a kubectl command the lesson depends on (one that changes the cluster): its
// failure ends the lesson.
func (w *walk) do(args ...string) error {
	if _, err := w.kubectl(args...); err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// show runs a kubectl command that only displays state. The lesson goes on if it fails
// (its output and exit status are already printed), but the failure is listed at the end.
func (w *walk) show(args ...string) {
	if _, err := w.kubectl(args...); err != nil {
		w.failed++
		w.notes = append(w.notes, fmt.Sprintf("kubectl %s failed: %v", strings.Join(args, " "), err))
	}
}

// waitHTTP polls url from inside netns ns (silently) until it answers three times in a
// row, up to d: kube-proxy programs a new Service within about a second.
func (w *walk) waitHTTP(ns, url string, d time.Duration) time.Duration {
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		ok := 0
		for ok < 3 && exec.Command("ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-m", "1", url).Run() == nil {
			ok++
		}
		if ok == 3 {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start)
}

// curl runs curl inside a namespace and returns the body.
func (w *walk) curl(ns, comment, url string) (string, error) {
	display := fmt.Sprintf("ip netns exec %s curl -s -m 3 %s", ns, url)
	if comment != "" {
		display += "   # " + comment
	}
	return w.sh(display, "ip", "netns", "exec", ns, "curl", "-s", "-m", "3", "-w", "\n", url)
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}

// readyEndpoints returns the ready endpoint addresses of a Service and their nodes.
func (w *walk) readyEndpoints(ctx context.Context, svc string) (addrs []string, nodes map[string]bool, err error) {
	list, err := w.cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, nil, err
	}
	nodes = map[string]bool{}
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
	sort.Strings(addrs)
	return addrs, nodes, nil
}

// waitReady waits until svc has exactly n ready endpoints.
func (w *walk) waitReady(ctx context.Context, svc string, n int) ([]string, map[string]bool, error) {
	w.say("waiting until %s has %d ready endpoint(s) ...", svc, n)
	deadline := time.Now().Add(90 * time.Second)
	for {
		addrs, nodes, err := w.readyEndpoints(ctx, svc)
		if err == nil && len(addrs) == n {
			return addrs, nodes, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, nil, fmt.Errorf("%s: endpoints not ready after 90 s, want %d: %w", svc, n, err)
			}
			return nil, nil, fmt.Errorf("%s: %d ready endpoints after 90 s, want %d", svc, len(addrs), n)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// podName extracts "pod=NAME" from the built-in workload's answer.
func podName(body string) string {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, "pod="); ok {
			return v
		}
	}
	return ""
}

func (w *walk) run(ctx context.Context) error {
	w.title("The cluster")
	w.say("%d nodes, each a network namespace with the lab's node agent and kube-proxy (nftables mode).", len(w.l.Nodes()))
	w.show("get", "nodes", "-o", "wide")

	// 1. ClusterIP.
	w.title("A Deployment behind a ClusterIP Service")
	if err := w.do("create", "deployment", "nginx", "--image=nginx", "--replicas=3", "--port=80"); err != nil {
		return err
	}
	if _, err := w.kubectl("rollout", "status", "deployment/nginx", "--timeout=90s"); err != nil {
		return fmt.Errorf("deployment nginx did not become ready: %w", err)
	}
	w.say("the node agent runs each Pod in its own netns with a built-in HTTP server on its container ports")
	w.show("get", "pods", "-o", "wide")
	if err := w.do("expose", "deployment", "nginx", "--port=8080", "--target-port=80"); err != nil {
		return err
	}
	if _, _, err := w.waitReady(ctx, "nginx", 3); err != nil {
		return err
	}
	w.show("get", "service", "nginx")
	w.show("get", "endpoints", "nginx")
	svc, err := w.cs.CoreV1().Services("default").Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		return err
	}
	clusterIP := svc.Spec.ClusterIP
	w.say("now curl the ClusterIP from another pod: a client pod, whose netns the node agent names deterministically")
	if err := w.do("run", "client", "--image=busybox", "--restart=Never"); err != nil {
		return err
	}
	client, err := w.waitPodRunning(ctx, "client")
	if err != nil {
		return err
	}
	clientNS := lab.PodNetns(client)
	w.say("waiting for kube-proxy on %s to program the Service ...", client.Spec.NodeName)
	w.waitHTTP(clientNS, fmt.Sprintf("http://%s:8080/", clusterIP), 15*time.Second)
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		body, _ := w.curl(clientNS, "inside pod client", fmt.Sprintf("http://%s:8080/", clusterIP))
		if p := podName(body); p != "" {
			seen[p] = true
		}
	}
	w.check(len(seen) > 0, "ClusterIP answered from %d different pods", len(seen))

	// 2. Scale.
	w.title("Scaling: the endpoints follow the ready pods")
	if err := w.do("scale", "deployment", "nginx", "--replicas=1"); err != nil {
		return err
	}
	if _, _, err := w.waitReady(ctx, "nginx", 1); err != nil {
		return err
	}
	w.show("get", "endpoints", "nginx")
	w.say("the removed pods are Terminating: they keep serving during their grace period, but are no longer endpoints")
	w.show("get", "pods", "-l", "app=nginx", "-o", "wide")
	if err := w.do("scale", "deployment", "nginx", "--replicas=3"); err != nil {
		return err
	}
	if _, _, err := w.waitReady(ctx, "nginx", 3); err != nil {
		return err
	}
	w.say("new pods, new endpoint IPs:")
	w.show("get", "endpoints", "nginx")

	// 3. NodePort.
	w.title("NodePort: every node forwards, even one without a pod")
	w.say("scale to 2 so that one of the 3 nodes has no nginx pod")
	if err := w.do("scale", "deployment", "nginx", "--replicas=2"); err != nil {
		return err
	}
	_, podNodes, err := w.waitReady(ctx, "nginx", 2)
	if err != nil {
		return err
	}
	if err := w.do("patch", "service", "nginx", "-p", `{"spec":{"type":"NodePort"}}`); err != nil {
		return err
	}
	w.show("get", "service", "nginx")
	svc, err = w.cs.CoreV1().Services("default").Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		return err
	}
	nodePort := svc.Spec.Ports[0].NodePort
	for _, n := range w.l.Nodes() {
		w.waitHTTP(lab.ClientNS, fmt.Sprintf("http://%s:%d/", n.IP, nodePort), 15*time.Second)
	}
	okNodes := 0
	for _, n := range w.l.Nodes() {
		comment := n.Name + ", has a pod"
		if !podNodes[n.Name] {
			comment = n.Name + ", NO nginx pod: kube-proxy forwards to another node"
		}
		body, _ := w.curl(lab.ClientNS, comment, fmt.Sprintf("http://%s:%d/", n.IP, nodePort))
		if podName(body) != "" {
			okNodes++
		}
	}
	w.check(okNodes == len(w.l.Nodes()), "NodePort answered on %d of %d nodes, from the client behind the router", okNodes, len(w.l.Nodes()))

	// 4. LoadBalancer.
	w.title("LoadBalancer: an external IP from Loadstone's pool")
	if err := w.do("scale", "deployment", "nginx", "--replicas=3"); err != nil {
		return err
	}
	if _, _, err := w.waitReady(ctx, "nginx", 3); err != nil {
		return err
	}
	w.show("get", "ipaddresspools,l2advertisements")
	if err := w.do("patch", "service", "nginx", "-p", `{"spec":{"type":"LoadBalancer"}}`); err != nil {
		return err
	}
	first, _ := w.kubectl("get", "service", "nginx")
	wait := 30 * time.Second
	if p, ok := w.l.Proc("loadstone-controller"); !ok || !p.Alive() {
		wait = 5 * time.Second // no controller: say so quickly
	}
	if strings.Contains(first, "<pending>") {
		w.say("EXTERNAL-IP is <pending>: waiting for Loadstone's controller to assign one ...")
	}
	ip := w.waitExternalIP(ctx, "nginx", wait)
	if ip == "" {
		w.show("get", "service", "nginx")
		w.note("the Service got no EXTERNAL-IP within %v (controller: %s)", wait, w.procState("loadstone-controller"))
		return nil
	}
	w.say("EXTERNAL-IP %s assigned from lab-pool", ip)
	if strings.Contains(first, "<pending>") {
		w.show("get", "service", "nginx")
	}
	w.say("the client reaches %s through the router; the router finds the node that answers ARP for it", ip)
	if !w.lbTraffic(ctx, ip) {
		return nil
	}
	w.show("get", "events", "--field-selector", "involvedObject.kind=Service,involvedObject.name=nginx")

	// 5. Dual-stack.
	w.title("Dual-stack: an IPv6 address from the same pool")
	if err := w.do("patch", "service", "nginx", "-p", `{"spec":{"ipFamilyPolicy":"PreferDualStack"}}`); err != nil {
		return err
	}
	ip6 := w.waitExternalIP6(ctx, "nginx", 15*time.Second)
	w.show("get", "service", "nginx")
	if ip6 == "" {
		w.note("the dual-stack Service got no IPv6 EXTERNAL-IP within 15 s")
		return nil
	}
	w.say("the router finds the owner of %s with IPv6 neighbour discovery", ip6)
	w.lbTraffic(ctx, ip6)
	return nil
}

// lbTraffic curls a load-balancer IP from the client, shows the router's neighbour entry
// and which node it points at, and checks that the answers spread over the pods.
func (w *walk) lbTraffic(ctx context.Context, ip string) bool {
	u := fmt.Sprintf("http://%s/", net.JoinHostPort(ip, "8080"))
	if d := w.waitHTTP(lab.ClientNS, u, 30*time.Second); d > 3*time.Second {
		w.say("note: %s answered the client only %.1f s after it was assigned", ip, d.Seconds())
	}
	counts := map[string]int{}
	for i := 0; i < 9; i++ {
		body, _ := w.curl(lab.ClientNS, "", u)
		if p := podName(body); p != "" {
			counts[p]++
		}
	}
	out, _ := w.sh("ip netns exec ls-router ip neigh show "+ip, "ip", "netns", "exec", lab.RouterNS, "ip", "neigh", "show", ip)
	for _, n := range w.l.Nodes() {
		mac, err := exec.Command("ip", "-n", n.Name, "-br", "link", "show", "dev", lab.NodeLink).Output()
		if f := strings.Fields(string(mac)); err == nil && len(f) >= 3 && strings.Contains(out, f[2]) {
			w.say("%s is %s's eth0: that node announces %s", f[2], n.Name, ip)
		}
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		w.note("the LoadBalancer IP %s was assigned but does not answer from the client (speaker: %s)", ip, w.procState("speaker-"+w.l.Nodes()[0].Name))
		return false
	}
	w.say("responses per pod: %v", counts)
	w.check(len(counts) > 1, "LoadBalancer IP %s answered %d of 9 requests, spread over %d pods", ip, total, len(counts))
	return true
}

func (w *walk) check(ok bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ok {
		fmt.Println("# OK: " + msg)
		return
	}
	w.failed++
	fmt.Println("# NOT OK: " + msg)
	w.notes = append(w.notes, msg)
}

func (w *walk) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Println("# MISSING: " + msg)
	w.notes = append(w.notes, msg)
}

func (w *walk) procState(name string) string {
	if why, ok := w.l.State().Missing[name]; ok {
		return "not running: " + why
	}
	for part, why := range w.l.State().Missing {
		if strings.HasPrefix(name, part) {
			return "not running: " + why
		}
	}
	p, ok := w.l.Proc(name)
	if !ok {
		return "not started"
	}
	if !p.Alive() {
		return "exited, see " + p.Log
	}
	return "running, log " + p.Log
}

func (w *walk) waitPodRunning(ctx context.Context, name string) (*corev1.Pod, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := w.cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pod %s not Running after 60 s", name)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitExternalIP6 waits for an IPv6 ingress IP.
func (w *walk) waitExternalIP6(ctx context.Context, name string, d time.Duration) string {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		svc, err := w.cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, in := range svc.Status.LoadBalancer.Ingress {
				if strings.Contains(in.IP, ":") {
					return in.IP
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return ""
}

// waitExternalIP polls the Service until it has an ingress IP, printing the change.
func (w *walk) waitExternalIP(ctx context.Context, name string, d time.Duration) string {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		svc, err := w.cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, in := range svc.Status.LoadBalancer.Ingress {
				if in.IP != "" {
					return in.IP
				}
			}
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(200 * time.Millisecond):
		}
	}
	return ""
}
