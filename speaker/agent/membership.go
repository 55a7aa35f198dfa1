package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/internal/gossipkey"
	"github.com/loadstone-lb/loadstone/speaker/members"
)

// Defaults of the memberlist Secret (format: internal/gossipkey).
const (
	DefaultSecretName = gossipkey.DefaultSecretName
	SecretKey         = gossipkey.PrimaryKey
)

// keyPollInterval is how often the running membership reads the Secret (from the cache,
// which watches it) for a rotated key.
const keyPollInterval = time.Second

// MembershipConfig configures the membership runnable.
type MembershipConfig struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	NodeName   string
	// Secrets reads the gossip key Secret: the manager's cache, which watches the Secrets
	// of the speaker's namespace only, so a rotated key arrives without a restart. Cache
	// lists Nodes.
	Secrets client.Reader
	Cache   client.Reader
	// Namespace and SecretName locate the gossip keys (internal/gossipkey's format).
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
	// KeySwitchDelay: see members.Config (0: members.DefaultKeySwitchDelay).
	KeySwitchDelay time.Duration
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

	mu     sync.Mutex
	keyErr error // why no usable key was read yet (nil once one was)
	m      *members.Members
	failed error // memberlist could not start
}

// Ready reports nil once the gossip key is loaded and this node has joined the membership
// (members.Members.Joined); otherwise why not. The speaker's /readyz uses it.
func (r *MembershipRunnable) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.failed != nil:
		return fmt.Errorf("memberlist unusable: %w", r.failed)
	case r.m == nil && r.keyErr != nil:
		return fmt.Errorf("no memberlist key: %w", r.keyErr)
	case r.m == nil:
		return errors.New("memberlist not started")
	}
	return r.m.Joined()
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
		BindAddr: r.cfg.BindAddr, BindPort: r.cfg.Port, AdvertiseAddr: advertise,
		Key: key.Primary, SecondaryKeys: key.Secondary, KeySwitchDelay: r.cfg.KeySwitchDelay,
		MACs: macs, Peers: r.peers, Timing: r.cfg.Timing,
	})
	if err != nil {
		r.mu.Lock()
		r.failed = err
		r.mu.Unlock()
		log.Error("memberlist unusable: staying in degraded mode (Node readiness)", "err", err)
		<-ctx.Done()
		return nil
	}
	r.mu.Lock()
	r.m = m
	r.mu.Unlock()
	r.a.UseMembers(m)
	log.Info("memberlist running", "port", m.Port(), "advertise", advertise)
	r.followKeys(ctx, m, key)
	start := time.Now()
	if err := m.Stop(r.cfg.LeaveTimeout); err != nil {
		log.Warn("leaving memberlist", "err", err)
	}
	log.Info("left memberlist", "took", time.Since(start))
	return nil
}

// readKeys reads the keys from the Secret.
func (r *MembershipRunnable) readKeys(ctx context.Context) (gossipkey.Keys, error) {
	var s corev1.Secret
	err := r.cfg.Secrets.Get(ctx, client.ObjectKey{Namespace: r.cfg.Namespace, Name: r.cfg.SecretName}, &s)
	switch {
	case apierrors.IsNotFound(err):
		return gossipkey.Keys{}, fmt.Errorf("secret %s/%s not found (the controller creates it)", r.cfg.Namespace, r.cfg.SecretName)
	case err != nil:
		return gossipkey.Keys{}, fmt.Errorf("secret %s/%s: %w", r.cfg.Namespace, r.cfg.SecretName, err)
	}
	k, err := gossipkey.Parse(s.Data)
	if err != nil {
		return gossipkey.Keys{}, fmt.Errorf("secret %s/%s: %w", r.cfg.Namespace, r.cfg.SecretName, err)
	}
	return k, nil
}

// waitKey polls the Secret until it has a valid key.
func (r *MembershipRunnable) waitKey(ctx context.Context) (gossipkey.Keys, error) {
	delay := 500 * time.Millisecond
	for {
		k, err := r.readKeys(ctx)
		r.mu.Lock()
		r.keyErr = err
		r.mu.Unlock()
		if err == nil {
			return k, nil
		}
		r.cfg.Logger.Warn("waiting for the memberlist key; degraded mode until then", "err", err)
		select {
		case <-ctx.Done():
			return gossipkey.Keys{}, ctx.Err()
		case <-r.a.clock.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// followKeys reads the Secret every keyPollInterval until ctx ends and hands changed keys
// to memberlist. A Secret that goes missing or invalid keeps the keys in use (and logs).
func (r *MembershipRunnable) followKeys(ctx context.Context, m *members.Members, last gossipkey.Keys) {
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.a.clock.After(keyPollInterval):
		}
		k, err := r.readKeys(ctx)
		if err != nil {
			if ctx.Err() == nil && err.Error() != lastErr {
				r.cfg.Logger.Warn("memberlist key unreadable; keeping the keys in use", "err", err)
			}
			lastErr = err.Error()
			continue
		}
		lastErr = ""
		if k.Equal(last) {
			continue
		}
		if err := m.SetKeys(k.Primary, k.Secondary); err != nil {
			r.cfg.Logger.Error("memberlist key change not applied", "err", err)
			continue
		}
		r.cfg.Logger.Info("memberlist keys changed in the Secret", "secondary", len(k.Secondary))
		last = k
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
