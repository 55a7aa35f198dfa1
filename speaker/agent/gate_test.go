package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// carrier is a dataplane that carries the IPs the test says.
type carrier struct {
	mu  sync.Mutex
	ips map[netip.Addr]bool
}

func (*carrier) Name() string { return "dataplane" }
func (c *carrier) Apply(context.Context, Decision) Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[netip.Addr]bool{}
	for ip := range c.ips {
		out[ip] = true
	}
	return Report{Carried: out}
}

func (c *carrier) carry(ip netip.Addr) {
	c.mu.Lock()
	c.ips[ip] = true
	c.mu.Unlock()
}

// Announce only when ready, through the whole loop against a real API server: n4 wins
// 203.0.113.10 (mode pods; alone, it wins every IP) but neither answers for it nor lists it in its status until
// its dataplane carries it; the Service in mode off beside it is announced at once.
func TestAgentAnnouncesOnlyWhatTheDataplaneCarries(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ip := netip.MustParseAddr("203.0.113.10")
	f.service(t, "web", ip.String())
	f.service(t, "plain", "203.0.113.20")
	var svc corev1.Service
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, &svc); err != nil {
		t.Fatal(err)
	}
	svc.Annotations = map[string]string{v1beta1.AnnotationDataplaneMode: "pods"}
	if err := f.c.Update(ctx, &svc); err != nil {
		t.Fatal(err)
	}
	f.v.set([]string{"n4"}) // n4 sees only itself: it wins every IP
	dp := &carrier{ips: map[netip.Addr]bool{}}
	f.dataplane = dp
	ann, _, a := f.startAgentWith(t, ctx, "n4", nil, nil)

	waitFor(t, "the mode-off IP announced", func() (bool, string) {
		return slices.Contains(ann.ips(), "203.0.113.20"), fmt.Sprint(ann.ips())
	})
	settle(t, a)
	if slices.Contains(ann.ips(), ip.String()) {
		t.Fatalf("%s announced before the dataplane carries it: %v", ip, ann.ips())
	}
	if s, ok := f.statuses(t)["web@n4"]; ok && slices.Contains(s.IPs, ip.String()) {
		t.Fatalf("status lists %s before the dataplane carries it: %+v", ip, s)
	}

	dp.carry(ip)
	a.Trigger()
	waitFor(t, "n4 announces once carried", func() (bool, string) {
		return slices.Contains(ann.ips(), ip.String()), fmt.Sprint(ann.ips())
	})
	waitFor(t, "status of n4", func() (bool, string) {
		s, ok := f.statuses(t)["web@n4"]
		return ok && slices.Equal(s.IPs, []string{ip.String()}) && meta.IsStatusConditionTrue(s.Conditions, v1beta1.ConditionAnnounced),
			fmt.Sprintf("%+v", f.statuses(t))
	})
}
