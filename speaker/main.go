package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/dataplane/nft"
	"github.com/loadstone-lb/loadstone/internal/buildinfo"
	"github.com/loadstone-lb/loadstone/internal/events"
	"github.com/loadstone-lb/loadstone/internal/logging"
	"github.com/loadstone-lb/loadstone/internal/metricsauth"
	"github.com/loadstone-lb/loadstone/internal/readiness"
	"github.com/loadstone-lb/loadstone/internal/restwrite"
	"github.com/loadstone-lb/loadstone/speaker/agent"
	"github.com/loadstone-lb/loadstone/speaker/bfd"
	"github.com/loadstone-lb/loadstone/speaker/bgp"
	"github.com/loadstone-lb/loadstone/speaker/layer2"
	"github.com/loadstone-lb/loadstone/speaker/members"
)

func main() {
	if err := run(); err != nil {
		// A JSON record once logging is set up (slog's default), a text line before.
		slog.Error("loadstone-speaker stopped", "err", err)
		os.Exit(1)
	}
}

func run() error {
	// A private flag set: controller-runtime registers its own --kubeconfig on the global one.
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	var (
		kubeconfig  = fs.String("kubeconfig", "", "kubeconfig file (default: in-cluster config or $KUBECONFIG)")
		nodeName    = fs.String("node-name", os.Getenv("NODE_NAME"), "name of this node's Node object (required; default $NODE_NAME)")
		namespace   = fs.String("namespace", "loadstone-system", "namespace of the memberlist Secret")
		secretName  = fs.String("secret-name", agent.DefaultSecretName, "Secret holding the memberlist gossip keys (data key \"key\": 16/24/32 bytes; \"key.*\": more keys accepted; followed while running)")
		mlBind      = fs.String("memberlist-bind-addr", "", "memberlist bind address (default all; the Node's InternalIP is advertised)")
		mlPort      = fs.Int("memberlist-port", 7946, "memberlist TCP and UDP port")
		metricsAddr = fs.String("metrics-bind-address", ":7572", "address of the Prometheus metrics endpoint (0 disables it)")
		secure      = fs.Bool("metrics-secure", false, "serve metrics over HTTPS (self-signed) to clients whose bearer token may get the path (TokenReview and SubjectAccessReview)")
		probeAddr   = fs.String("health-probe-bind-address", ":7573", "address of the /healthz and /readyz endpoints (0 disables it)")
		dataplane   = fs.Bool("dataplane", true, "run the node dataplane (nftables table inet loadstone) for the Services in dataplane mode pods or nodeport; false removes the table at start and never announces such Services' IPs")
		dpResync    = fs.Duration("dataplane-resync-period", agent.DefaultDataplaneResync, "period of the dataplane's full sync (lists the table back and repairs drift)")
		logFlags    = logging.AddFlags(fs)
		timing      = members.FastTiming()
	)
	fs.DurationVar(&timing.ProbeInterval, "memberlist-probe-interval", timing.ProbeInterval, "memberlist probe interval")
	fs.DurationVar(&timing.ProbeTimeout, "memberlist-probe-timeout", timing.ProbeTimeout, "memberlist probe timeout (ack wait before indirect probes)")
	fs.IntVar(&timing.SuspicionMult, "memberlist-suspicion-mult", timing.SuspicionMult, "memberlist suspicion multiplier (suspicion timeout = mult × probe interval for up to 10 nodes)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	build := logging.ReadBuild()
	if logFlags.Version {
		fmt.Println("loadstone-speaker", build)
		return nil
	}
	if *nodeName == "" {
		return errors.New("--node-name is required")
	}
	slogger := logging.Setup(logging.Config{Level: logFlags.Level, Attrs: []any{"node", *nodeName}})
	slogger.Info("starting loadstone-speaker", build.LogAttrs()...)

	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1beta1.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		// Secrets (BGPPeer passwords) only from our own namespace: no cluster-wide watch.
		Cache:                  cache.Options{ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {Namespaces: map[string]cache.Config{*namespace: {}}}}},
		Logger:                 logr.FromSlogHandler(slogger.Handler()),
		Metrics:                metricsOptions(*metricsAddr, *secure),
		HealthProbeBindAddress: *probeAddr,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	reg := ctrlmetrics.Registry
	if err := buildinfo.Register(reg); err != nil {
		return err
	}

	var ag *agent.Agent
	ann := layer2.New(layer2.Config{
		Logger:     slogger.With("subsystem", "layer2"),
		Registerer: reg,
		OnConflict: func(c layer2.Conflict) { ag.OnConflict(c) },
		YieldsTo:   func(ip netip.Addr, mac net.HardwareAddr) bool { return ag.YieldsTo(ip, mac) },
	})
	w, err := restwrite.New(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return err
	}
	rec := events.New(events.Options{Writer: w, Scheme: mgr.GetScheme(), Controller: "loadstone-speaker",
		Instance: "loadstone-speaker-" + *nodeName, Log: logr.FromSlogHandler(slogger.With("subsystem", "events").Handler()),
		Registerer: reg})
	if err := mgr.Add(rec); err != nil {
		return err
	}
	bgpServer := bgp.New(bgp.Config{
		Logger:     slogger.With("subsystem", "bgp"),
		Registerer: reg,
		OnChange:   func() { ag.Trigger() },
	})
	bgpAnn := &agent.BGP{Server: bgpServer, Logger: slogger.With("subsystem", "bgp")}
	bfdManager, err := bfd.New(bfd.Config{
		Logger:     slogger.With("subsystem", "bfd"),
		Registerer: reg,
		OnChange:   func(c bfd.Change) { bgpAnn.OnBFDChange(c, ag.Trigger) },
	})
	if err != nil {
		return fmt.Errorf("bfd: %w", err)
	}
	bgpAnn.BFD = bfdManager
	// The dataplane's table lives in the speaker's own network namespace: the node's
	// (hostNetwork). It stays when the speaker stops (a restart must not cut traffic that
	// routers keep sending during graceful restart); --dataplane=false removes it.
	applier, err := nft.New(nft.Config{Registerer: reg, Logger: slogger.With("subsystem", "dataplane")})
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	var dpAnn agent.Announcer
	if *dataplane {
		dpAnn = &agent.Dataplane{Backend: applier, Logger: slogger.With("subsystem", "dataplane"), ResyncPeriod: *dpResync}
	} else if err := applier.Remove(); err != nil {
		slogger.Warn("removing the dataplane table", "err", err)
	}
	ag = agent.New(agent.Config{
		Logger:     slogger.With("subsystem", "agent"),
		Registerer: reg,
		NodeName:   *nodeName,
		Cache:      mgr.GetCache(),
		Client:     mgr.GetClient(),
		Recorder:   rec,
		Announcers: []agent.Announcer{agent.Layer2{Backend: ann}, bgpAnn},
		Dataplane:  dpAnn,
	})
	if err := mgr.Add(ag); err != nil {
		return err
	}
	// On SIGTERM the membership runnable leaves memberlist first (peers take over at
	// once), then the announcer stops answering.
	membership := ag.Membership(agent.MembershipConfig{
		Logger:     slogger.With("subsystem", "members"),
		Registerer: reg,
		NodeName:   *nodeName,
		// The cache watches the Secrets of our namespace (BGP passwords too).
		Secrets:    mgr.GetCache(),
		Cache:      mgr.GetCache(),
		Namespace:  *namespace,
		SecretName: *secretName,
		BindAddr:   *mlBind,
		Port:       *mlPort,
		Timing:     timing,
		AfterLeave: ann.Close,
	})
	if err := mgr.Add(membership); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	// Ready: caches synced, memberlist key loaded and joined to the other speakers.
	if err := mgr.AddReadyzCheck("caches", readiness.CachesSynced(mgr.GetCache(), 500*time.Millisecond)); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("membership", func(*http.Request) error { return membership.Ready() }); err != nil {
		return err
	}
	runErr := mgr.Start(ctrl.SetupSignalHandler())
	// The loop has stopped: withdraw and close the BGP sessions (peers with graceful
	// restart keep our routes as stale instead), then take the BFD sessions down
	// administratively, which peers must not read as a path failure (RFC 5882 §3.2).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bgpServer.Close(ctx); err != nil {
		slogger.Warn("closing BGP sessions", "err", err)
	}
	if err := bfdManager.Close(); err != nil {
		slogger.Warn("closing BFD sessions", "err", err)
	}
	return runErr
}

func metricsOptions(addr string, secure bool) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if secure {
		o.SecureServing, o.FilterProvider = true, metricsauth.FilterProvider
	}
	return o
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return ctrl.GetConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}
