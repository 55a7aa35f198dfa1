package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/loadstone-lb/loadstone/controller/app"
)

// TestLeaderElection runs two controllers with Lease-based leader election: only the
// leader allocates; when it stops, the other takes over, restores what is held and
// allocates the next Service, and no IP moves.
//
// "Only the leader allocates" is checked on records, not by watching the second controller
// for a while: the Lease never changed hands (same holder, same leaseTransitions) between
// the first controller's first allocation and the second Service's, and the first
// controller's own status-write counter shows it wrote both Services.
func TestLeaderElection(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ns := "ha"
	namespace(t, c, ns, nil)
	create(t, c, ipPool("main", "203.0.113.0/28"))
	const leaseName, leaseNS = "loadstone-controller", "default"
	elect := func(o *ctrl.Options) {
		o.LeaderElection = true
		o.LeaderElectionID = leaseName
		o.LeaderElectionNamespace = leaseNS
		o.LeaderElectionReleaseOnCancel = true
		lease, renew, retry := 4*time.Second, 3*time.Second, 200*time.Millisecond
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = &lease, &renew, &retry
	}
	lease := func() (holder string, transitions int32) {
		t.Helper()
		var l coordinationv1.Lease
		if err := c.Get(context.Background(), types.NamespacedName{Namespace: leaseNS, Name: leaseName}, &l); err != nil {
			t.Fatalf("get Lease: %v", err)
		}
		return ptr.Deref(l.Spec.HolderIdentity, ""), ptr.Deref(l.Spec.LeaseTransitions, 0)
	}
	reg1, reg2 := prometheus.NewRegistry(), prometheus.NewRegistry()
	waitWrites := func(who string, reg *prometheus.Registry, want float64) {
		t.Helper()
		eventually(t, fmt.Sprintf("%s controller to have written %v Service statuses", who, want), func() (bool, string) {
			got := counter(t, reg, "loadstone_controller_service_status_writes_total")
			return got == want, fmt.Sprintf("%v writes", got)
		})
	}

	first := startControllerWith(t, env, app.Options{Registerer: reg1}, elect)
	create(t, c, lbService(ns, "s1"))
	ip1 := ingressOf(t, c, ns, "s1")
	// Only a leader allocates, and only the first controller runs: it holds the Lease.
	holder1, transitions1 := lease()
	if holder1 == "" {
		t.Fatal("s1 is allocated but the Lease has no holder")
	}

	second := startControllerWith(t, env, app.Options{Registerer: reg2}, elect)
	create(t, c, lbService(ns, "s2"))
	ip2 := ingressOf(t, c, ns, "s2")
	// Every acquisition by another identity increments leaseTransitions, so the same
	// holder with the same count means the second controller never led up to now.
	if h, tr := lease(); h != holder1 || tr != transitions1 {
		t.Fatalf("the Lease changed hands while the first controller ran: holder %q transitions %d, was %q %d", h, tr, holder1, transitions1)
	}
	waitWrites("the first", reg1, 2) // s1 and s2
	if got := counter(t, reg2, "loadstone_controller_service_status_writes_total"); got != 0 {
		t.Fatalf("the second controller wrote %v Service statuses while not leading", got)
	}

	first.stop()
	select {
	case <-second.Services.Ready():
	case <-time.After(waitTimeout):
		t.Fatal("the second controller did not take over after the first stopped")
	}
	if h, tr := lease(); h == "" || h == holder1 || tr != transitions1+1 {
		t.Fatalf("after the takeover the Lease has holder %q transitions %d; want a new holder and %d", h, tr, transitions1+1)
	}
	create(t, c, lbService(ns, "s3"))
	ip3 := ingressOf(t, c, ns, "s3")
	waitIPs(t, c, ns, "s1", ip1...)
	waitIPs(t, c, ns, "s2", ip2...)
	if ip3[0] == ip1[0] || ip3[0] == ip2[0] {
		t.Fatalf("s3 got %v, already held (s1 %v, s2 %v)", ip3, ip1, ip2)
	}
	checkNoDuplicates(t, c)
}

// counter returns the value of the unlabelled counter name in reg (0 if it has none yet).
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
