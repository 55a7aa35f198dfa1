package main

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/loadstone-lb/loadstone/dataplane/nft"
	"github.com/loadstone-lb/loadstone/internal/buildinfo"
	"github.com/loadstone-lb/loadstone/internal/events"
	"github.com/loadstone-lb/loadstone/internal/metricsdoc"
	"github.com/loadstone-lb/loadstone/speaker/agent"
	"github.com/loadstone-lb/loadstone/speaker/bfd"
	"github.com/loadstone-lb/loadstone/speaker/bgp"
	"github.com/loadstone-lb/loadstone/speaker/layer2"
	"github.com/loadstone-lb/loadstone/speaker/members"
)

// TestMetrics registers the speaker's metrics the way run does, on the registry it serves
// (controller-runtime's), and checks them against docs/metrics.md and promlint. The
// membership's metrics are registered when memberlist starts, so it starts one on
// loopback; the dataplane opens a netlink socket (it changes nothing).
func TestMetrics(t *testing.T) {
	rec := metricsdoc.NewRecorder(ctrlmetrics.Registry)
	if err := buildinfo.Register(rec); err != nil {
		t.Fatal(err)
	}
	layer2.New(layer2.Config{Registerer: rec})
	events.New(events.Options{Scheme: runtime.NewScheme(), Controller: "loadstone-speaker", Registerer: rec})
	bgpServer := bgp.New(bgp.Config{Registerer: rec})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := bgpServer.Close(ctx); err != nil {
			t.Errorf("closing the BGP server: %v", err)
		}
	})
	bfdManager, err := bfd.New(bfd.Config{Registerer: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bfdManager.Close(); err != nil {
			t.Errorf("closing BFD: %v", err)
		}
	})
	if _, err := nft.New(nft.Config{Registerer: rec}); err != nil {
		t.Fatalf("dataplane: %v", err)
	}
	agent.New(agent.Config{Registerer: rec, NodeName: "n1"})
	m, err := members.Start(t.Context(), members.Config{Registerer: rec, NodeName: "n1",
		BindAddr: "127.0.0.1", AdvertiseAddr: "127.0.0.1",
		Peers: func(context.Context) ([]string, error) { return nil, nil }})
	if err != nil {
		t.Fatalf("memberlist: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(); err != nil {
			t.Errorf("memberlist shutdown: %v", err)
		}
	})
	metricsdoc.Check(t, metricsdoc.Speaker, ctrlmetrics.Registry, rec)
}
