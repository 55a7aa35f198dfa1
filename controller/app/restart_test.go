package app_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
)

// TestRestart stops the controller, changes things while it is down (a Service deleted,
// new ones created), starts a new controller, and checks that no IP moved and none is
// held twice.
func TestRestart(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ns := "restart"
	namespace(t, c, ns, nil)
	create(t, c, ipPool("main", "203.0.113.0/27", "2001:db8:100::/120"))
	first := startController(t, env, app.Options{})

	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("s%d", i))
		create(t, c, lbService(ns, names[i]))
	}
	key := withAnnotation(v1beta1.AnnotationAllowSharedIP, "k")
	create(t, c, lbService(ns, "sh-a", key, withPort(80)), lbService(ns, "sh-b", key, withPort(81)),
		lbService(ns, "dual", withDual(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)))
	names = append(names, "sh-a", "sh-b", "dual")
	before := map[string][]string{}
	for _, n := range names {
		before[n] = ingressOf(t, c, ns, n)
	}
	if len(before["dual"]) != 2 {
		t.Fatalf("dual got %v", before["dual"])
	}
	first.stop()

	// While no controller runs: one Service goes, two new ones arrive.
	if err := c.Delete(context.Background(), getSvc(t, c, ns, "s3")); err != nil {
		t.Fatal(err)
	}
	create(t, c, lbService(ns, "new1"), lbService(ns, "new2"))

	second := startController(t, env, app.Options{})
	<-second.Services.Ready()
	n1, n2 := ingressOf(t, c, ns, "new1"), ingressOf(t, c, ns, "new2")
	for _, n := range names {
		if n == "s3" {
			continue
		}
		waitIPs(t, c, ns, n, before[n]...)
	}
	// One of the new Services gets s3's freed address (the lowest free one).
	if !slices.Contains([]string{n1[0], n2[0]}, before["s3"][0]) {
		t.Errorf("new1 %v, new2 %v: neither got s3's freed %v", n1, n2, before["s3"])
	}
	checkNoDuplicates(t, c)
}
