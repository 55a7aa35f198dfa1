package readiness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// Syncer is what CachesSynced checks: a controller-runtime cache.
type Syncer interface {
	WaitForCacheSync(ctx context.Context) bool
}

// CachesSynced returns a checker that passes once c has synced. Each check waits at most
// wait (the probe's own timeout should be longer) for a cache still syncing.
func CachesSynced(c Syncer, wait time.Duration) healthz.Checker {
	var synced atomic.Bool
	return func(req *http.Request) error {
		if synced.Load() {
			return nil
		}
		ctx, cancel := context.WithTimeout(req.Context(), wait)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("caches not synced yet")
		}
		synced.Store(true)
		return nil
	}
}

// CampaignLock is a resourcelock.Interface that records whether the elector has read the
// lock: it does so at the start of every attempt to acquire or renew.
type CampaignLock struct {
	resourcelock.Interface
	mu    sync.Mutex
	tried bool
}

// NewLeaseLock returns a CampaignLock over a Lease namespace/name with a unique identity
// (host name and a UUID), with the clients controller-runtime would build: a request
// timeout of timeout, so a hung request cannot outlast the renew deadline. It records no
// Events (the elector logs its transitions).
func NewLeaseLock(cfg *rest.Config, namespace, name string, timeout time.Duration) (*CampaignLock, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	cfg = rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election")
	cfg.Timeout = timeout
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	coord, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	l, err := resourcelock.New(resourcelock.LeasesResourceLock, namespace, name, core, coord,
		resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	return &CampaignLock{Interface: l}, nil
}

// Get implements resourcelock.Interface.
func (l *CampaignLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r, raw, err := l.Interface.Get(ctx)
	l.mu.Lock()
	l.tried = true
	l.mu.Unlock()
	return r, raw, err
}

// Checker passes once the elector has tried the lock (a NotFound Lease, which the elector
// then creates, counts: the API answered).
func (l *CampaignLock) Checker() healthz.Checker {
	return func(*http.Request) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.tried {
			return errors.New("leader election not started")
		}
		return nil
	}
}
