package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
	"github.com/loadstone-lb/loadstone/internal/gossipkey"
	"github.com/loadstone-lb/loadstone/internal/logging"
	"github.com/loadstone-lb/loadstone/internal/metricsauth"
	"github.com/loadstone-lb/loadstone/internal/readiness"
)

func main() {
	if err := run(); err != nil {
		// A JSON record once logging is set up (slog's default), a text line before.
		slog.Error("loadstone-controller stopped", "err", err)
		os.Exit(1)
	}
}

func run() error {
	// A private flag set: controller-runtime registers its own --kubeconfig on the global one.
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	var (
		kubeconfig   = fs.String("kubeconfig", "", "kubeconfig file (default: in-cluster config or $KUBECONFIG)")
		leaderElect  = fs.Bool("leader-elect", true, "elect one active controller through a Lease")
		leaderNS     = fs.String("leader-elect-namespace", "loadstone-system", "namespace of the leader election Lease")
		metricsAddr  = fs.String("metrics-bind-address", ":7472", "address of the Prometheus metrics endpoint (0 disables it)")
		probeAddr    = fs.String("health-probe-bind-address", ":7473", "address of the /healthz and /readyz endpoints")
		requireClass = fs.Bool("require-class", false, "serve only Services with loadBalancerClass "+v1beta1.LoadBalancerClass)
		workers      = fs.Int("workers", 16, "parallel Service reconciles")
		qps          = fs.Float64("kube-api-qps", 300, "API requests per second the controller may send (one status patch and one Event per allocation)")
		burst        = fs.Int("kube-api-burst", 600, "API request burst")
		pprof        = fs.Bool("enable-pprof", false, "serve Go profiles under /debug/pprof/ on the metrics address")
		secure       = fs.Bool("metrics-secure", false, "serve metrics over HTTPS (self-signed) to clients whose bearer token may get the path (TokenReview and SubjectAccessReview)")
		keySecret    = fs.String("memberlist-secret-name", gossipkey.DefaultSecretName, "Secret holding the speakers' memberlist key, created with a random key when missing (never changed once it exists); empty: never create it")
		keySecretNS  = fs.String("memberlist-secret-namespace", "", "namespace of the memberlist Secret (default: --leader-elect-namespace)")
		logFlags     = logging.AddFlags(fs)
	)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	build := logging.ReadBuild()
	if logFlags.Version {
		fmt.Println("loadstone-controller", build)
		return nil
	}
	slogger := logging.Setup(logging.Config{Level: logFlags.Level})
	slogger.Info("starting loadstone-controller", build.LogAttrs()...)
	log := logr.FromSlogHandler(slogger.Handler())

	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	// No gzip: the API server is the bottleneck at scale and compressing every watch event
	// and patch response costs it (and us) CPU for no gain inside a cluster.
	cfg.DisableCompression = true
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1beta1.AddToScheme(scheme); err != nil {
		return err
	}
	const leaseName = "loadstone-controller"
	var lock *readiness.CampaignLock
	if *leaderElect {
		// controller-runtime's lock, observed: a replica is ready once it campaigns.
		// The 5 s request timeout is controller-runtime's (half its 10 s renew deadline).
		if lock, err = readiness.NewLeaseLock(cfg, *leaderNS, leaseName, 5*time.Second); err != nil {
			return err
		}
	}
	opts := ctrl.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Cache:                   app.CacheOptions(),
		LeaderElection:          *leaderElect,
		LeaderElectionID:        leaseName,
		LeaderElectionNamespace: *leaderNS,
		// main exits when the manager stops, so a graceful stop can hand over at once.
		LeaderElectionReleaseOnCancel: true,
		Metrics:                       metricsOptions(*metricsAddr, *pprof, *secure),
		HealthProbeBindAddress:        *probeAddr,
	}
	if lock != nil {
		opts.LeaderElectionResourceLockInterface = lock
	}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if _, err := app.Setup(mgr, app.Options{
		RequireClass: *requireClass,
		Registerer:   ctrlmetrics.Registry,
		Workers:      *workers,
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if *keySecret != "" {
		ns := *keySecretNS
		if ns == "" {
			ns = *leaderNS
		}
		if err := mgr.Add(&gossipkey.Ensurer{Client: mgr.GetClient(), Logger: slogger.With("subsystem", "memberlist-key"),
			Namespace: ns, Name: *keySecret}); err != nil {
			return err
		}
	}
	// Ready: caches synced and, with leader election, campaigning (a standby is ready).
	if err := mgr.AddReadyzCheck("caches", readiness.CachesSynced(mgr.GetCache(), 500*time.Millisecond)); err != nil {
		return err
	}
	if lock != nil {
		if err := mgr.AddReadyzCheck("leader-election", lock.Checker()); err != nil {
			return err
		}
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

func metricsOptions(addr string, pprof, secure bool) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if secure {
		o.SecureServing, o.FilterProvider = true, metricsauth.FilterProvider
	}
	if pprof {
		o.ExtraHandlers = map[string]http.Handler{
			"/debug/pprof/":        http.HandlerFunc(httppprof.Index),
			"/debug/pprof/profile": http.HandlerFunc(httppprof.Profile),
			"/debug/pprof/heap":    httppprof.Handler("heap"),
		}
	}
	return o
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return ctrl.GetConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}
