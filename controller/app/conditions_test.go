package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
	"github.com/loadstone-lb/loadstone/controller/pools"
)

// waitValid waits until obj (re-read into obj) has a Valid condition with status and a
// message containing substr.
func waitValid(t *testing.T, c client.Client, obj client.Object, conds func() []metav1.Condition, status metav1.ConditionStatus, substr string) {
	t.Helper()
	what := fmt.Sprintf("%T %s Valid=%s %q", obj, obj.GetName(), status, substr)
	eventually(t, what, func() (bool, string) {
		if err := c.Get(context.Background(), types.NamespacedName{Name: obj.GetName()}, obj); err != nil {
			return false, err.Error()
		}
		cond := meta.FindStatusCondition(conds(), v1beta1.ConditionValid)
		if cond == nil {
			return false, "no Valid condition"
		}
		ok := cond.Status == status && strings.Contains(cond.Message, substr) && cond.ObservedGeneration == obj.GetGeneration()
		return ok, fmt.Sprintf("%+v", *cond)
	})
}

// noProgrammed checks that obj, as last read, carries no Programmed condition: the
// controller no longer sets one (BGP is implemented) and deletes the obsolete
// Programmed=False NotImplemented of earlier versions.
func noProgrammed(t *testing.T, obj client.Object, conds []metav1.Condition) {
	t.Helper()
	if cond := meta.FindStatusCondition(conds, pools.ConditionProgrammed); cond != nil {
		t.Errorf("%T %s: Programmed condition %+v, want none", obj, obj.GetName(), *cond)
	}
}

// TestConfigurationConditions: configuration objects of every kind with a status get
// their Valid condition and an Event from the controller; a broken advertisement never
// withdraws an IP, and fixing it turns the condition True. No kind, valid or not, gets a
// Programmed condition any more.
func TestConfigurationConditions(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ns := "conds"
	namespace(t, c, ns, nil)
	create(t, c, ipPool("p", "203.0.113.0/30"))
	startController(t, env, app.Options{})
	create(t, c, lbService(ns, "s"))
	waitIPs(t, c, ns, "s", "203.0.113.0")

	l2 := &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2"},
		Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"p", "missing-pool"}}}
	peer := &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "peer"},
		Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64513, PeerAddress: "192.0.2.1", BFDProfile: "no-such-profile"}}
	adv := &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "bgp"},
		Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}, Communities: []string{"no-such-alias"}}}
	create(t, c, l2, peer, adv)

	waitValid(t, c, l2, func() []metav1.Condition { return l2.Status.Conditions }, metav1.ConditionFalse,
		`spec.ipAddressPools[1]: IPAddressPool "missing-pool" does not exist`)
	if cond := meta.FindStatusCondition(l2.Status.Conditions, v1beta1.ConditionValid); cond.Reason != v1beta1.ReasonInvalid {
		t.Errorf("l2 reason %q, want %q", cond.Reason, v1beta1.ReasonInvalid)
	}
	waitEvent(t, c, "default", "l2", "InvalidConfiguration", `"missing-pool" does not exist`)
	waitValid(t, c, peer, func() []metav1.Condition { return peer.Status.Conditions }, metav1.ConditionFalse,
		`BFDProfile "no-such-profile" does not exist`)
	waitEvent(t, c, "default", "peer", "InvalidConfiguration", "no-such-profile")
	waitValid(t, c, adv, func() []metav1.Condition { return adv.Status.Conditions }, metav1.ConditionFalse,
		`community alias "no-such-alias" is not defined`)
	waitEvent(t, c, "default", "bgp", "InvalidConfiguration", "no-such-alias")
	noProgrammed(t, peer, peer.Status.Conditions)
	noProgrammed(t, adv, adv.Status.Conditions)
	noProgrammed(t, l2, l2.Status.Conditions)

	// Meanwhile the pool stays valid and the Service keeps its IP.
	waitPoolStatus(t, c, "p", func(p *v1beta1.IPAddressPool) (bool, string) {
		cond := validCond(p)
		return cond != nil && cond.Status == metav1.ConditionTrue && p.Status.IPv4Assigned == 1, fmt.Sprintf("%+v %+v", cond, p.Status)
	})
	waitIPs(t, c, ns, "s", "203.0.113.0")

	// Fixing the advertisement and defining the alias make both valid.
	for {
		if err := c.Get(context.Background(), types.NamespacedName{Name: "l2"}, l2); err != nil {
			t.Fatal(err)
		}
		l2.Spec.IPAddressPools = []string{"p"}
		err := c.Update(context.Background(), l2)
		if err == nil {
			break
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	create(t, c, &v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: "aliases"},
		Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "no-such-alias", Value: "64512:1"}}}})
	waitValid(t, c, l2, func() []metav1.Condition { return l2.Status.Conditions }, metav1.ConditionTrue, "in force")
	waitValid(t, c, adv, func() []metav1.Condition { return adv.Status.Conditions }, metav1.ConditionTrue, "in force")
	noProgrammed(t, adv, adv.Status.Conditions)
	var com v1beta1.Community
	com.Name = "aliases"
	waitValid(t, c, &com, func() []metav1.Condition { return com.Status.Conditions }, metav1.ConditionTrue, "in force")
	noProgrammed(t, &com, com.Status.Conditions)
	// The peer is still broken; the Service never moved.
	waitValid(t, c, peer, func() []metav1.Condition { return peer.Status.Conditions }, metav1.ConditionFalse, "no-such-profile")
	waitIPs(t, c, ns, "s", "203.0.113.0")
}
