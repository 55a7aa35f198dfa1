package app_test

import (
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/loadstone-lb/loadstone/controller/app"
)

// TestLeaderElection runs two controllers with Lease-based leader election: only the
// leader allocates; when it stops, the other takes over, restores what is held and
// allocates the next Service, and no IP moves.
func TestLeaderElection(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ns := "ha"
	namespace(t, c, ns, nil)
	create(t, c, ipPool("main", "203.0.113.0/28"))
	elect := func(o *ctrl.Options) {
		o.LeaderElection = true
		o.LeaderElectionID = "loadstone-controller"
		o.LeaderElectionNamespace = "default"
		o.LeaderElectionReleaseOnCancel = true
		lease, renew, retry := 4*time.Second, 3*time.Second, 200*time.Millisecond
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = &lease, &renew, &retry
	}
	first := startControllerWith(t, env, app.Options{}, elect)
	create(t, c, lbService(ns, "s1"))
	ip1 := ingressOf(t, c, ns, "s1")
	second := startControllerWith(t, env, app.Options{}, elect)
	create(t, c, lbService(ns, "s2"))
	ip2 := ingressOf(t, c, ns, "s2")
	select {
	case <-second.Services.Ready():
		t.Fatal("the second controller became active while the first holds the Lease")
	default:
	}
	first.stop()
	<-second.Services.Ready()
	create(t, c, lbService(ns, "s3"))
	ip3 := ingressOf(t, c, ns, "s3")
	waitIPs(t, c, ns, "s1", ip1...)
	waitIPs(t, c, ns, "s2", ip2...)
	if ip3[0] == ip1[0] || ip3[0] == ip2[0] {
		t.Fatalf("s3 got %v, already held (s1 %v, s2 %v)", ip3, ip1, ip2)
	}
	checkNoDuplicates(t, c)
}
