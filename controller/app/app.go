package app

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/controller/coverage"
	"github.com/loadstone-lb/loadstone/controller/pools"
	"github.com/loadstone-lb/loadstone/controller/service"
	"github.com/loadstone-lb/loadstone/internal/buildinfo"
	"github.com/loadstone-lb/loadstone/internal/events"
	"github.com/loadstone-lb/loadstone/internal/restwrite"
)

// EventSource is the reportingController of the controller's Events.
const EventSource = "loadstone-controller"

// Options configure the controller.
type Options struct {
	// RequireClass serves only Services with loadBalancerClass loadstone.io/lb.
	RequireClass bool
	// Registerer receives the metrics.
	Registerer prometheus.Registerer
	// Workers is the number of parallel Service reconciles (default 16).
	Workers int
	// StatusInterval is the least time between pool status flushes (default 1 s).
	StatusInterval time.Duration
	// CoverageInterval is the time between two checks for IPs announced by nobody
	// (package coverage; default 5 s).
	CoverageInterval time.Duration
	// UnannouncedGrace is how long an IP must stay unannounceable before its Warning
	// Event (default 30 s).
	UnannouncedGrace time.Duration
}

// CacheOptions are the manager cache options the controller is built for: managedFields
// and kubectl's last-applied annotation are dropped from cached objects, and Services and
// Namespaces are read from the cache without a deep copy (the controller never mutates
// what it reads). At 10k Services this saves most of the memory and of the copying.
func CacheOptions() cache.Options {
	strip := cache.TransformStripManagedFields()
	return cache.Options{
		DefaultTransform: func(in any) (any, error) {
			out, err := strip(in)
			if o, ok := out.(metav1.Object); ok && err == nil {
				delete(o.GetAnnotations(), corev1.LastAppliedConfigAnnotation)
			}
			return out, err
		},
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Service{}:   {UnsafeDisableDeepCopy: ptr.To(true)},
			&corev1.Namespace{}: {UnsafeDisableDeepCopy: ptr.To(true)},
		},
	}
}

// Controller is the wired controller.
type Controller struct {
	Services *service.Reconciler
	Pools    *pools.Reconciler
	Coverage *coverage.Reconciler
}

// Setup adds the controller to mgr. The manager's scheme must hold client-go's types and
// loadstone.io/v1beta1.
func Setup(mgr ctrl.Manager, opts Options) (*Controller, error) {
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if err := buildinfo.Register(opts.Registerer); err != nil {
		return nil, err
	}
	log := mgr.GetLogger()
	// Status patches and Events go through plain REST clients that do not decode the
	// returned objects (internal/restwrite), on the manager's HTTP client.
	w, err := restwrite.New(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, err
	}
	// Our own bounded Event writer instead of the manager's broadcaster, which keeps every
	// Event for six minutes (tens of MiB at 10k allocations; internal/events).
	rec := events.New(events.Options{Writer: w, Scheme: mgr.GetScheme(), Controller: EventSource,
		Log: log.WithName("events"), Registerer: opts.Registerer})
	if err := mgr.Add(rec); err != nil {
		return nil, fmt.Errorf("event writer: %w", err)
	}
	var pr *pools.Reconciler
	svc := service.New(service.Options{
		Client:        mgr.GetClient(),
		Status:        w,
		Recorder:      rec,
		Log:           log.WithName("service"),
		Metrics:       service.NewMetrics(opts.Registerer),
		RequireClass:  opts.RequireClass,
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
	cov := coverage.New(coverage.Options{
		Client:   mgr.GetClient(),
		Recorder: rec,
		Log:      log.WithName("coverage"),
		Metrics:  coverage.NewMetrics(opts.Registerer),
		Ours:     svc.Ours,
		Interval: opts.CoverageInterval,
		Grace:    opts.UnannouncedGrace,
	})
	if err := mgr.Add(cov); err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	return &Controller{Services: svc, Pools: pr, Coverage: cov}, nil
}
