package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
)

// TestPoolProtection, against the real API server: every pool gets the pool-protection
// finalizer; a pool deleted while a Service holds one of its addresses stays Terminating,
// the Service keeps its IP, the pool's DeletionBlocked condition and a Warning Event name
// the Service, and no other Service gets an address from it; once the Service is deleted
// the pool goes away. A pool nobody uses goes at once.
func TestPoolProtection(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ctx := context.Background()
	ns := "protect"
	namespace(t, c, ns, nil)
	create(t, c, ipPool("doomed", "203.0.113.0/29"), ipPool("unused", "198.51.100.0/29"))
	updatePool(t, c, "unused", func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = new(bool) })
	startController(t, env, app.Options{})

	getPool := func(name string) (*v1beta1.IPAddressPool, error) {
		var p v1beta1.IPAddressPool
		err := c.Get(ctx, types.NamespacedName{Name: name}, &p)
		return &p, err
	}
	for _, name := range []string{"doomed", "unused"} {
		eventually(t, "pool "+name+" to get the finalizer", func() (bool, string) {
			p, err := getPool(name)
			if err != nil {
				return false, err.Error()
			}
			return slices.Contains(p.Finalizers, v1beta1.FinalizerPoolProtection), fmt.Sprintf("finalizers %v", p.Finalizers)
		})
	}
	create(t, c, lbService(ns, "holder"), lbService(ns, "sharer", withAnnotation(v1beta1.AnnotationAllowSharedIP, "k"), withPort(81)))
	waitIPs(t, c, ns, "holder", "203.0.113.0")
	waitIPs(t, c, ns, "sharer", "203.0.113.1")

	// A pool nobody uses goes at once.
	p, _ := getPool("unused")
	if err := c.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the unused pool to go", func() (bool, string) {
		_, err := getPool("unused")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})

	p, _ = getPool("doomed")
	if err := c.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitPoolStatus(t, c, "doomed", func(p *v1beta1.IPAddressPool) (bool, string) {
		cond := meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionDeletionBlocked)
		ok := p.DeletionTimestamp != nil && cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == v1beta1.ReasonInUse &&
			strings.Contains(cond.Message, "2 Services hold: protect/holder, protect/sharer")
		return ok, fmt.Sprintf("deletionTimestamp %v, condition %+v", p.DeletionTimestamp, cond)
	})
	waitEvent(t, c, "default", "doomed", "DeletionBlocked", "protect/holder, protect/sharer")
	waitIPs(t, c, ns, "holder", "203.0.113.0")
	waitIPs(t, c, ns, "sharer", "203.0.113.1")

	// Nothing new from a terminating pool: neither a fresh address nor a share.
	create(t, c, lbService(ns, "newcomer"), lbService(ns, "joiner", withAnnotation(v1beta1.AnnotationAllowSharedIP, "k"), withPort(82)),
		lbService(ns, "by-name", withAnnotation(v1beta1.AnnotationAddressPool, "doomed")))
	waitEvent(t, c, ns, "newcomer", "AllocationFailed", "being deleted")
	waitEvent(t, c, ns, "joiner", "AllocationFailed", "being deleted")
	waitEvent(t, c, ns, "by-name", "AllocationFailed", "PoolTerminating")

	// One holder goes: the condition names the other; the pool stays.
	if err := c.Delete(ctx, getSvc(t, c, ns, "sharer")); err != nil {
		t.Fatal(err)
	}
	waitPoolStatus(t, c, "doomed", func(p *v1beta1.IPAddressPool) (bool, string) {
		cond := meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionDeletionBlocked)
		return cond != nil && strings.HasSuffix(cond.Message, "1 Service holds: protect/holder"), fmt.Sprintf("%+v", cond)
	})
	waitIPs(t, c, ns, "holder", "203.0.113.0")

	// The last holder goes: so does the pool.
	if err := c.Delete(ctx, getSvc(t, c, ns, "holder")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the doomed pool to go", func() (bool, string) {
		_, err := getPool("doomed")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	for _, n := range []string{"newcomer", "joiner", "by-name"} {
		if got := ingress(getSvc(t, c, ns, n)); len(got) != 0 {
			t.Errorf("%s got %v from a terminating pool", n, got)
		}
	}
}

// TestPoolProtectionAcrossRestart: a pool deleted while no controller runs, with a Service
// holding one of its addresses, is still Terminating after a new controller has started
// and restored the addresses (the finalizer is never removed before that), the Service
// keeps its IP, and the pool goes once the Service does.
func TestPoolProtectionAcrossRestart(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ctx := context.Background()
	ns := "protect-restart"
	namespace(t, c, ns, nil)
	create(t, c, ipPool("kept", "203.0.113.0/29"))
	first := startController(t, env, app.Options{})
	create(t, c, lbService(ns, "holder"))
	waitIPs(t, c, ns, "holder", "203.0.113.0")
	var p v1beta1.IPAddressPool
	eventually(t, "the finalizer", func() (bool, string) {
		if err := c.Get(ctx, types.NamespacedName{Name: "kept"}, &p); err != nil {
			return false, err.Error()
		}
		return slices.Contains(p.Finalizers, v1beta1.FinalizerPoolProtection), fmt.Sprint(p.Finalizers)
	})
	first.stop()

	if err := c.Delete(ctx, &p); err != nil {
		t.Fatal(err)
	}
	second := startController(t, env, app.Options{})
	<-second.Services.Ready()
	waitPoolStatus(t, c, "kept", func(p *v1beta1.IPAddressPool) (bool, string) {
		cond := meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionDeletionBlocked)
		return p.DeletionTimestamp != nil && cond != nil && strings.HasSuffix(cond.Message, "1 Service holds: protect-restart/holder"),
			fmt.Sprintf("%+v", cond)
	})
	waitIPs(t, c, ns, "holder", "203.0.113.0")
	if err := c.Delete(ctx, getSvc(t, c, ns, "holder")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pool to go", func() (bool, string) {
		err := c.Get(ctx, types.NamespacedName{Name: "kept"}, &v1beta1.IPAddressPool{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}
