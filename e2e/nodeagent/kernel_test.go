package nodeagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// requireRoot skips tests that need to create network namespaces under -short (as the
// README promises) and when not root.
func requireRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("kernel test: not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create network namespaces")
	}
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testNetns creates a named netns "lst-<suffix>-<role>" and deletes it when the test ends.
func testNetns(t *testing.T, ns namespaces, name string) netns.NsHandle {
	t.Helper()
	h, err := ns.Ensure(name)
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := ns.Delete(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return h
}

// TestPodPlumbingAndWorkload builds a node netns with the bridge and one pod netns with a
// veth, then checks real HTTP and UDP traffic from the node to the pod's workload over
// IPv4 and IPv6.
func TestPodPlumbingAndWorkload(t *testing.T) {
	requireRoot(t)
	suffix := randomSuffix(t)
	// Pin the pod netns through the mount-namespace path the agent uses under
	// `ip netns exec`, joining this process's own mount namespace.
	mnt, err := os.Open("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mnt.Close() }) // after the netns cleanups, which use it
	plain := namespaces{dir: DefaultNetnsDir}
	viaMount := namespaces{dir: DefaultNetnsDir, mountNS: mnt}

	nodeName := "lst-" + suffix + "-node"
	podName := "lst-" + suffix + "-pod"
	nodeNS := testNetns(t, plain, nodeName)
	podNS := testNetns(t, viaMount, podName)

	gw4 := netip.MustParsePrefix("198.18.77.1/24")
	gw6 := netip.MustParsePrefix("2001:db8:1000:77::1/64")
	if err := EnsureBridge(nodeNS, BridgeSpec{Name: DefaultBridge, Gateways: []netip.Prefix{gw4, gw6}}, nodeName); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	// Twice: it must be idempotent.
	if err := EnsureBridge(nodeNS, BridgeSpec{Name: DefaultBridge, Gateways: []netip.Prefix{gw4, gw6}}, nodeName); err != nil {
		t.Fatalf("EnsureBridge again: %v", err)
	}

	pod4 := netip.MustParsePrefix("198.18.77.2/24")
	pod6 := netip.MustParsePrefix("2001:db8:1000:77::2/64")
	spec := PodNetSpec{
		Bridge:   DefaultBridge,
		HostVeth: HostVethName(types.UID("uid-" + suffix)),
		Addrs:    []netip.Prefix{pod4, pod6},
		Gateways: []netip.Addr{gw4.Addr(), gw6.Addr()},
	}
	for i := range 2 {
		if err := SetupPodNet(nodeNS, podNS, spec); err != nil {
			t.Fatalf("SetupPodNet (run %d): %v", i, err)
		}
	}

	// iproute2 must see the pod namespace by name, with eth0 and its address.
	out, err := exec.Command("ip", "netns", "exec", podName, "ip", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns exec %s: %v\n%s", podName, err, out)
	}
	if !strings.Contains(string(out), "198.18.77.2/24") || !strings.Contains(string(out), "2001:db8:1000:77::2/64") {
		t.Fatalf("pod eth0 addresses not as expected:\n%s", out)
	}
	out, err = exec.Command("ip", "netns", "exec", podName, "ip", "route", "show", "default").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "via 198.18.77.1") {
		t.Fatalf("pod default route: %v\n%s", err, out)
	}

	id := Identity{Pod: "web-1", Node: "lst-node"}
	ports := WorkloadPorts(&corev1.PodSpec{Containers: []corev1.Container{{
		Name: "c",
		Ports: []corev1.ContainerPort{
			{ContainerPort: 8080},
			{ContainerPort: 5353, Protocol: corev1.ProtocolUDP},
			{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}, // duplicate, ignored
		},
	}}})
	if len(ports) != 2 {
		t.Fatalf("WorkloadPorts = %v, want 2 ports", ports)
	}
	w, err := StartWorkload(podNS, id, ports, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("StartWorkload: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, a := range []netip.Addr{pod4.Addr(), pod6.Addr()} {
		t.Run("http "+a.String(), func(t *testing.T) {
			conn, err := dialIn(ctx, nodeNS, "tcp", netip.AddrPortFrom(a, 8080).String())
			if err != nil {
				t.Fatalf("connect from node netns: %v", err)
			}
			defer conn.Close()
			local := conn.LocalAddr().String()
			fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
			body, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			want := id.Answer(local)
			if !strings.HasPrefix(string(body), "HTTP/1.0 200") || !strings.HasSuffix(string(body), "\r\n\r\n"+want) {
				t.Fatalf("answer:\n%s\nwant status 200 and body %q", body, want)
			}
			// The client is the node's bridge address of the family.
			src := netip.MustParseAddrPort(local).Addr()
			if src != gw4.Addr() && src != gw6.Addr() {
				t.Errorf("client address %s is not a bridge address", src)
			}
		})
		t.Run("udp "+a.String(), func(t *testing.T) {
			conn, err := dialIn(ctx, nodeNS, "udp", netip.AddrPortFrom(a, 5353).String())
			if err != nil {
				t.Fatalf("udp socket in node netns: %v", err)
			}
			defer conn.Close()
			msg := "ping-" + a.String()
			if _, err := conn.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 100)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no echo: %v", err)
			}
			if string(buf[:n]) != msg {
				t.Fatalf("echo %q, want %q", buf[:n], msg)
			}
		})
	}

	// Unhealthy: 503 with the same body.
	w.SetUnhealthy(true)
	resp, err := httpClientIn(nodeNS, 10*time.Second).Get("http://" + netip.AddrPortFrom(pod4.Addr(), 8080).String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("unhealthy workload answered %d, want 503", resp.StatusCode)
	}

	// Stop: connections are refused afterwards.
	w.Stop()
	if c, err := dialIn(ctx, nodeNS, "tcp", netip.AddrPortFrom(pod4.Addr(), 8080).String()); err == nil {
		c.Close()
		t.Error("connect after Stop succeeded")
	}

	if err := TeardownPodNet(nodeNS, spec.HostVeth); err != nil {
		t.Fatalf("TeardownPodNet: %v", err)
	}
	if err := TeardownPodNet(nodeNS, spec.HostVeth); err != nil {
		t.Fatalf("TeardownPodNet twice: %v", err)
	}
	if err := viaMount.Delete(podName); err != nil {
		t.Fatalf("delete pod netns: %v", err)
	}
	if _, err := os.Stat(filepath.Join(DefaultNetnsDir, podName)); !os.IsNotExist(err) {
		t.Errorf("pod netns file still there after Delete: %v", err)
	}
	if err := DeleteBridge(nodeNS, DefaultBridge); err != nil {
		t.Fatal(err)
	}
}
