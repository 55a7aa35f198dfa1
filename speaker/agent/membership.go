package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/speaker/members"
)

// Defaults of the memberlist Secret.
const (
	DefaultSecretName = "loadstone-memberlist"
	SecretKey         = "key"
)

// MembershipConfig configures the membership runnable.
type MembershipConfig struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	NodeName   string
	// APIReader reads the Secret directly (no cluster-wide Secret watch); Cache lists Nodes.
	APIReader client.Reader
	Cache     client.Reader
	// Namespace and SecretName locate the gossip key (data key "key").
	Namespace, SecretName string
	// BindAddr ("" = all) and Port of memberlist; the advertised address is the Node's
	// InternalIP of the bind address's family (IPv4 when unspecified).
	BindAddr string
	Port     int
	// Timing of memberlist (zero: members.FastTiming()).
	Timing members.Timing
	// LeaveTimeout bounds the graceful leave on stop.
	LeaveTimeout time.Duration
	// AfterLeave runs after the graceful leave (the speaker stops answering ARP/NDP then).
	AfterLeave func()
}

// Membership returns a runnable that waits for the gossip key, starts memberlist, hands
// it to the agent, and on stop leaves the cluster before calling AfterLeave. Until it is
// running the agent is in degraded mode (Node readiness).
func (a *Agent) Membership(cfg MembershipConfig) *MembershipRunnable {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaveTimeout <= 0 {
		cfg.LeaveTimeout = 500 * time.Millisecond
	}
	if cfg.SecretName == "" {
		cfg.SecretName = DefaultSecretName
	}
	return &MembershipRunnable{a: a, cfg: cfg}
}

// MembershipRunnable implements manager.Runnable.
type MembershipRunnable struct {
	a   *Agent
	cfg MembershipConfig
}

// NeedLeaderElection: every speaker runs.
func (r *MembershipRunnable) NeedLeaderElection() bool { return false }

// Start runs until ctx ends.
func (r *MembershipRunnable) Start(ctx context.Context) error {
	log := r.cfg.Logger
	defer func() {
		if r.cfg.AfterLeave != nil {
			r.cfg.AfterLeave()
		}
	}()
	key, err := r.waitKey(ctx)
	if err != nil {
		return nil // ctx ended
	}
	advertise, err := r.selfAddr(ctx)
	if err != nil {
		log.Warn("no InternalIP for this node; memberlist picks the advertised address", "err", err)
	}
	macs, _ := localMACs()
	m, err := members.Start(ctx, members.Config{
		Logger: log, Registerer: r.cfg.Registerer, NodeName: r.cfg.NodeName,
		BindAddr: r.cfg.BindAddr, BindPort: r.cfg.Port, AdvertiseAddr: advertise, Key: key,
		MACs: macs, Peers: r.peers, Timing: r.cfg.Timing,
	})
	if err != nil {
		log.Error("memberlist unusable: staying in degraded mode (Node readiness)", "err", err)
		<-ctx.Done()
		return nil
	}
	r.a.UseMembers(m)
	log.Info("memberlist running", "port", m.Port(), "advertise", advertise)
	<-ctx.Done()
	start := time.Now()
	if err := m.Stop(r.cfg.LeaveTimeout); err != nil {
		log.Warn("leaving memberlist", "err", err)
	}
	log.Info("left memberlist", "took", time.Since(start))
	return nil
}

// waitKey polls the Secret until it has a valid key.
func (r *MembershipRunnable) waitKey(ctx context.Context) ([]byte, error) {
	delay := 500 * time.Millisecond
	for {
		var s corev1.Secret
		err := r.cfg.APIReader.Get(ctx, client.ObjectKey{Namespace: r.cfg.Namespace, Name: r.cfg.SecretName}, &s)
		switch {
		case err == nil:
			k := s.Data[SecretKey]
			if n := len(k); n == 16 || n == 24 || n == 32 {
				return k, nil
			}
			err = fmt.Errorf("secret %s/%s: key %q is %d bytes, want 16, 24 or 32", r.cfg.Namespace, r.cfg.SecretName, SecretKey, len(k))
		case apierrors.IsNotFound(err):
			err = fmt.Errorf("secret %s/%s not found", r.cfg.Namespace, r.cfg.SecretName)
		}
		r.cfg.Logger.Warn("waiting for the memberlist key; degraded mode until then", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.a.clock.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func (r *MembershipRunnable) family() bool {
	if a, err := netip.ParseAddr(r.cfg.BindAddr); err == nil && a.Is6() && !a.Is4In6() {
		return true
	}
	return false
}

// internalIP returns n's InternalIP of the wanted family.
func internalIP(n *corev1.Node, v6 bool) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is6() == v6 {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func (r *MembershipRunnable) selfAddr(ctx context.Context) (string, error) {
	if a, err := netip.ParseAddr(r.cfg.BindAddr); err == nil && !a.IsUnspecified() {
		return a.String(), nil
	}
	var n corev1.Node
	if err := r.cfg.Cache.Get(ctx, client.ObjectKey{Name: r.cfg.NodeName}, &n); err != nil {
		return "", err
	}
	ip, ok := internalIP(&n, r.family())
	if !ok {
		return "", errors.New("node has no InternalIP of the memberlist family")
	}
	return ip.String(), nil
}

// peers is the discovery function: every Node's InternalIP (pods are not used: in the
// lab speakers are processes, and hostNetwork pods have the Node's address anyway).
func (r *MembershipRunnable) peers(ctx context.Context) ([]string, error) {
	var nodes corev1.NodeList
	if err := r.cfg.Cache.List(ctx, &nodes); err != nil {
		return nil, err
	}
	var out []string
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Name == r.cfg.NodeName {
			continue
		}
		if ip, ok := internalIP(n, r.family()); ok {
			out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(r.cfg.Port)))
		}
	}
	return out, nil
}

func localMACs() ([]net.HardwareAddr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []net.HardwareAddr
	for _, i := range ifs {
		if len(i.HardwareAddr) == 6 && i.Flags&net.FlagLoopback == 0 {
			out = append(out, i.HardwareAddr)
		}
	}
	return out, nil
}
