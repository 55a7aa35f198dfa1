package nodeagent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"

	"github.com/loadstone-lb/loadstone/internal/nsthread"
)

// WorkloadPort is one port the built-in workload serves.
type WorkloadPort struct {
	Port     int32
	Protocol corev1.Protocol // TCP or UDP; others are not served
}

// WorkloadPorts lists the distinct TCP and UDP container ports of a pod spec, in spec order.
func WorkloadPorts(spec *corev1.PodSpec) []WorkloadPort {
	seen := map[WorkloadPort]bool{}
	var out []WorkloadPort
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			wp := WorkloadPort{Port: p.ContainerPort, Protocol: proto}
			if (proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP) || p.ContainerPort <= 0 || seen[wp] {
				continue
			}
			seen[wp] = true
			out = append(out, wp)
		}
	}
	return out
}

// Identity is what the workload says about itself.
type Identity struct {
	Pod  string
	Node string
}

// Answer is the line the HTTP workload returns to a client at remote ("ip:port").
func (id Identity) Answer(remote string) string {
	return fmt.Sprintf("pod=%s node=%s client=%s\n", id.Pod, id.Node, remote)
}

// Workload is the built-in stand-in for a pod's containers: an HTTP server on every TCP
// container port and a UDP echo on every UDP one, with sockets opened inside the pod's
// network namespace by this process.
type Workload struct {
	id        Identity
	log       *slog.Logger
	unhealthy atomic.Bool
	servers   []*http.Server
	packets   []net.PacketConn
	wg        sync.WaitGroup
}

// StartWorkload opens the listeners inside podNS and starts serving. A port that cannot be
// opened is an error (and nothing stays open).
func StartWorkload(podNS netns.NsHandle, id Identity, ports []WorkloadPort, log *slog.Logger) (*Workload, error) {
	w := &Workload{id: id, log: log}
	var listeners []net.Listener
	err := nsthread.Do(podNS, func() error {
		for _, p := range ports {
			addr := ":" + strconv.Itoa(int(p.Port))
			switch p.Protocol {
			case corev1.ProtocolTCP:
				l, err := net.Listen("tcp", addr)
				if err != nil {
					return fmt.Errorf("listen tcp %s: %w", addr, err)
				}
				listeners = append(listeners, l)
			case corev1.ProtocolUDP:
				c, err := net.ListenPacket("udp", addr)
				if err != nil {
					return fmt.Errorf("listen udp %s: %w", addr, err)
				}
				w.packets = append(w.packets, c)
			}
		}
		return nil
	})
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		for _, c := range w.packets {
			c.Close()
		}
		return nil, err
	}
	for _, l := range listeners {
		srv := &http.Server{Handler: http.HandlerFunc(w.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
		w.servers = append(w.servers, srv)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("http workload stopped", "addr", l.Addr().String(), "err", err)
			}
		}()
	}
	for _, c := range w.packets {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			echo(c)
		}()
	}
	return w, nil
}

// SetUnhealthy makes the HTTP servers answer 503 (true) or 200 (false).
func (w *Workload) SetUnhealthy(v bool) { w.unhealthy.Store(v) }

func (w *Workload) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if w.unhealthy.Load() {
		rw.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = rw.Write([]byte(w.id.Answer(r.RemoteAddr)))
}

func echo(c net.PacketConn) {
	buf := make([]byte, 64*1024)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, _ = c.WriteTo(buf[:n], from)
	}
}

// Stop closes every listener and connection at once (the "kill" at the end of a pod's
// grace period) and waits for the serving goroutines.
func (w *Workload) Stop() {
	for _, s := range w.servers {
		_ = s.Close()
	}
	for _, c := range w.packets {
		_ = c.Close()
	}
	w.wg.Wait()
}
