package nodeagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// resolvePort turns a probe's port (a number or a container port name) into a number.
func resolvePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	if port.Type == intstr.Int {
		if port.IntVal <= 0 || port.IntVal > 65535 {
			return 0, fmt.Errorf("port %d out of range", port.IntVal)
		}
		return int(port.IntVal), nil
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, port.StrVal)
}

// probeTiming returns a probe's timings with Kubernetes' defaults for unset fields.
func probeTiming(p *corev1.Probe) (initialDelay, period, timeout time.Duration, success, failure int32) {
	period = time.Duration(p.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	timeout = time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	success, failure = p.SuccessThreshold, p.FailureThreshold
	if success <= 0 {
		success = 1
	}
	if failure <= 0 {
		failure = 3
	}
	return time.Duration(p.InitialDelaySeconds) * time.Second, period, timeout, success, failure
}

// prober runs readiness probes from the node's network namespace, as a kubelet does from
// the node.
type prober struct {
	nodeNS netns.NsHandle
}

// probeTarget is what a probe checks: the pod's address, and for exec probes a way to run
// a command in the container (nil for the built-in workload, where exec probes pass).
type probeTarget struct {
	ip   netip.Addr
	exec func(ctx context.Context, cmd []string) error
}

// check runs one probe of container c against t; an error says why it failed.
func (pr prober) check(ctx context.Context, t probeTarget, c *corev1.Container, p *corev1.Probe) error {
	podIP := t.ip
	_, _, timeout, _, _ := probeTiming(p)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		port, err := resolvePort(p.HTTPGet.Port, c)
		if err != nil {
			return err
		}
		host := podIP.String()
		if p.HTTPGet.Host != "" {
			host = p.HTTPGet.Host
		}
		scheme := "http"
		if p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: p.HTTPGet.Path}
		if u.Path == "" {
			u.Path = "/"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "kube-probe/loadstone-lab")
		for _, h := range p.HTTPGet.HTTPHeaders {
			req.Header.Set(h.Name, h.Value)
		}
		resp, err := httpClientIn(pr.nodeNS, timeout).Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe got status %d", resp.StatusCode)
		}
		return nil
	case p.TCPSocket != nil || p.GRPC != nil:
		var port int
		var err error
		host := podIP.String()
		if p.TCPSocket != nil {
			port, err = resolvePort(p.TCPSocket.Port, c)
			if p.TCPSocket.Host != "" {
				host = p.TCPSocket.Host
			}
		} else {
			// No gRPC health service in the built-in workload: a connect stands in.
			port = int(p.GRPC.Port)
		}
		if err != nil {
			return err
		}
		conn, err := dialIn(ctx, pr.nodeNS, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		conn.Close()
		return nil
	case p.Exec != nil && t.exec != nil:
		// The command runs in the container's namespaces; the timeout kills it.
		return t.exec(ctx, p.Exec.Command)
	default:
		// exec probes of the built-in workload cannot run: there is no program. They
		// count as passing.
		return nil
	}
}

// run probes until ctx ends, feeding results to observe (which reports whether the
// verdict changed) and calling changed after a change.
func (pr prober) run(ctx context.Context, podIP netip.Addr, c *corev1.Container, p *corev1.Probe, observe func(ok bool, success, failure int32) bool, changed func()) {
	pr.runTarget(ctx, probeTarget{ip: podIP}, c, p, observe, changed)
}

// runTarget is run against a probe target.
func (pr prober) runTarget(ctx context.Context, t probeTarget, c *corev1.Container, p *corev1.Probe, observe func(ok bool, success, failure int32) bool, changed func()) {
	initialDelay, period, _, success, failure := probeTiming(p)
	timer := time.NewTimer(initialDelay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := pr.check(ctx, t, c, p)
		if ctx.Err() != nil {
			return
		}
		if observe(err == nil, success, failure) {
			changed()
		}
		timer.Reset(period)
	}
}

// untilPasses runs a startup probe until it passes (true) or fails failureThreshold times
// in a row (false; also when ctx ends).
func (pr prober) untilPasses(ctx context.Context, t probeTarget, c *corev1.Container, p *corev1.Probe) bool {
	passed := false
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fails int32
	pr.runTarget(ctx, t, c, p, func(ok bool, _, failure int32) bool {
		if ok {
			passed = true
			cancel()
			return false
		}
		if fails++; fails >= failure {
			cancel()
		}
		return false
	}, func() {})
	return passed
}

// untilFails runs a liveness probe until it fails failureThreshold times in a row (true)
// or ctx ends (false).
func (pr prober) untilFails(ctx context.Context, t probeTarget, c *corev1.Container, p *corev1.Probe) bool {
	failed := false
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fails int32
	pr.runTarget(ctx, t, c, p, func(ok bool, _, failure int32) bool {
		if ok {
			fails = 0
			return false
		}
		if fails++; fails >= failure {
			failed = true
			cancel()
		}
		return false
	}, func() {})
	return failed
}
