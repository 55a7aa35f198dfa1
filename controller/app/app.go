// Package app wires the controller's reconcilers into a controller-runtime manager; main
// only parses flags and calls it, and the envtest tests and the benchmark start exactly
// the same wiring.
package app

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/loadstone-lb/loadstone/controller/pools"
	"github.com/loadstone-lb/loadstone/controller/service"
)

// EventSource is the reportingController of the controller's Events.
const EventSource = "loadstone-controller"

// Options configure the controller.
type Options struct {
	// RequireClass serves only Services with loadBalancerClass loadstone.io/lb.
	RequireClass bool
	// IPMode is the ingress ipMode: VIP (default) or Proxy.
	IPMode corev1.LoadBalancerIPMode
	// Registerer receives the metrics.
	Registerer prometheus.Registerer
	// Workers is the number of parallel Service reconciles (default 16).
	Workers int
	// StatusInterval is the least time between pool status flushes (default 1 s).
	StatusInterval time.Duration
}

// Controller is the wired controller.
type Controller struct {
	Services *service.Reconciler
	Pools    *pools.Reconciler
}

// Setup adds the controller to mgr. The manager's scheme must hold client-go's types and
// loadstone.io/v1beta1.
func Setup(mgr ctrl.Manager, opts Options) (*Controller, error) {
	switch opts.IPMode {
	case "", corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy:
	default:
		return nil, fmt.Errorf("ip mode %q: want VIP or Proxy", opts.IPMode)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	rec := mgr.GetEventRecorder(EventSource)
	log := mgr.GetLogger()
	var pr *pools.Reconciler
	svc := service.New(service.Options{
		Client:        mgr.GetClient(),
		Recorder:      rec,
		Log:           log.WithName("service"),
		Metrics:       service.NewMetrics(opts.Registerer),
		RequireClass:  opts.RequireClass,
		IPMode:        opts.IPMode,
		Workers:       opts.Workers,
		OnUsageChange: func() { pr.UsageChanged() },
	})
	pr = pools.New(pools.Options{
		Client:         mgr.GetClient(),
		Recorder:       rec,
		Log:            log.WithName("pools"),
		Metrics:        pools.NewMetrics(opts.Registerer),
		Allocator:      svc,
		StatusInterval: opts.StatusInterval,
	})
	if err := svc.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("service controller: %w", err)
	}
	if err := pr.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("pool controller: %w", err)
	}
	return &Controller{Services: svc, Pools: pr}, nil
}
