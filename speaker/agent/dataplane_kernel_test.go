package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/loadstone-lb/loadstone/dataplane/nft"
	"github.com/loadstone-lb/loadstone/dataplane/plan"
	"github.com/loadstone-lb/loadstone/internal/netnstest"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
)

// TestDataplaneKernel runs the Dataplane announcer with the real nftables applier in a
// fresh network namespace: a snapshot with two Services in mode pods is installed (one
// with backends, one as a reject) and both IPs are carried; when every Service is back in
// mode off, the table is gone.
func TestDataplaneKernel(t *testing.T) {
	netnstest.Skip(t)
	name := netnstest.New(t, "lsag-dp-"+netnstest.Suffix())
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	applier, err := nft.New(nft.Config{NetNS: int(ns)})
	if err != nil {
		t.Fatal(err)
	}
	d := &Dataplane{Backend: applier}

	c := cluster()
	c.Lists.EndpointSlices = c.Lists.EndpointSlices[:1] // b has no endpoint
	snap := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	r := d.Apply(context.Background(), Decision{Snapshot: snap, Alive: snap.Alive})
	if len(r.Errors) != 0 || !r.Carried[dpIP] || !r.Carried[dpIP2] || len(r.Carried) != 2 {
		t.Fatalf("report %+v", r)
	}
	got, err := nft.Read(int(ns))
	if err != nil {
		t.Fatal(err)
	}
	fa := plan.Frontend{Addr: dpIP, Protocol: plan.TCP, Port: 80}
	fb := plan.Frontend{Addr: dpIP2, Protocol: plan.TCP, Port: 80}
	if _, ok := got.Frontends[fa]; !ok || !got.Reject[fb] || len(got.Frontends) != 1 || len(got.Reject) != 1 {
		t.Fatalf("installed frontends %v, rejects %v", got.Frontends, got.Reject)
	}
	for i, b := range got.Tables[fa] {
		if b.String() != "198.18.1.5:8080" {
			t.Fatalf("table entry %d of %v is %s", i, fa, b)
		}
	}
	if len(got.Tables[fa]) == 0 {
		t.Fatalf("no Maglev table installed for %v", fa)
	}

	listTables := func() string { return netnstest.Run(t, "ip", "netns", "exec", name, "nft", "list", "tables") }
	if out := listTables(); !strings.Contains(out, "inet "+nft.TableName) {
		t.Fatalf("nft list tables does not show our table:\n%s", out)
	}

	// Every Service back to kube-proxy: the table goes.
	for _, s := range c.Lists.Services {
		c.Mode(s.Namespace, s.Name, "off")
	}
	snap = c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	if r := d.Apply(context.Background(), Decision{Snapshot: snap, Alive: snap.Alive}); len(r.Errors) != 0 || len(r.Carried) != 0 {
		t.Fatalf("all off: report %+v", r)
	}
	if out := listTables(); strings.Contains(out, nft.TableName) {
		t.Errorf("table still there after every Service left the dataplane:\n%s", out)
	}
}
