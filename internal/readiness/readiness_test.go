package readiness

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/loadstone-lb/loadstone/internal/testenv"
	"github.com/loadstone-lb/loadstone/internal/testwait"
)

type replica struct {
	name    string
	mgr     ctrl.Manager
	lock    *CampaignLock
	checks  map[string]healthz.Checker
	elected <-chan struct{}
}

func (r *replica) ready() error {
	for name, c := range r.checks {
		if err := c(httptest.NewRequest("GET", "/readyz", nil)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func (r *replica) isLeader() bool {
	select {
	case <-r.elected:
		return true
	default:
		return false
	}
}

// TestLeaderAndStandbyReady runs two managers campaigning for one Lease: neither is ready
// before it starts, both are once started (caches synced, campaigning), and only one
// leads: the standby's readiness does not wait for the election.
func TestLeaderAndStandbyReady(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "loadstone-system"}}); err != nil {
		t.Fatal(err)
	}
	var rs []*replica
	for _, name := range []string{"a", "b"} {
		lock, err := NewLeaseLock(env.Config, "loadstone-system", "readiness-test", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
			Scheme:                              env.Scheme,
			LeaderElection:                      true,
			LeaderElectionID:                    "readiness-test",
			LeaderElectionNamespace:             "loadstone-system",
			LeaderElectionResourceLockInterface: lock,
			Metrics:                             metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress:              "0",
		})
		if err != nil {
			t.Fatal(err)
		}
		// An informer the cache must sync, as the controller's are.
		if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Service{}); err != nil {
			t.Fatal(err)
		}
		r := &replica{name: name, mgr: mgr, lock: lock, elected: mgr.Elected(), checks: map[string]healthz.Checker{
			"caches": CachesSynced(mgr.GetCache(), 100*time.Millisecond), "leader-election": lock.Checker()}}
		if err := r.ready(); err == nil {
			t.Fatalf("replica %s ready before it started", name)
		}
		rs = append(rs, r)
	}
	for _, r := range rs {
		go func() {
			if err := r.mgr.Start(ctx); err != nil {
				t.Errorf("replica %s: %v", r.name, err)
			}
		}()
	}
	for _, r := range rs {
		testwait.For(t, "replica "+r.name+" ready", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
			err := r.ready()
			return err == nil, fmt.Sprint(err)
		})
	}
	testwait.For(t, "one leader", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		return rs[0].isLeader() != rs[1].isLeader(), fmt.Sprintf("a leads %v, b leads %v", rs[0].isLeader(), rs[1].isLeader())
	})
	for _, r := range rs {
		if err := r.ready(); err != nil {
			t.Errorf("replica %s (leader %v) not ready: %v", r.name, r.isLeader(), err)
		}
	}
}
