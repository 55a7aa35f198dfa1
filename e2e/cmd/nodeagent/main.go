package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/loadstone-lb/loadstone/e2e/nodeagent"
)

func main() {
	// Started again by the agent to run a container's program: never returns then.
	nodeagent.RunHelperIfRequested()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		kubeconfig    = flag.String("kubeconfig", "", "kubeconfig of the agent's credentials (required)")
		nodeName      = flag.String("node-name", "", "Node name (required)")
		nodeIP        = flag.String("node-ip", "", "node's IPv4 InternalIP (required unless --node-ip6)")
		nodeIP6       = flag.String("node-ip6", "", "node's IPv6 InternalIP")
		podCIDR       = flag.String("pod-cidr", "", "node's IPv4 pod CIDR, e.g. 198.18.1.0/24")
		podCIDR6      = flag.String("pod-cidr6", "", "node's IPv6 pod CIDR, e.g. 2001:db8:1000:1::/64")
		stateDir      = flag.String("state-dir", "", "directory for the agent's state (required)")
		bridge        = flag.String("bridge", nodeagent.DefaultBridge, "name of the pods' bridge in the node netns")
		netnsPrefix   = flag.String("netns-prefix", nodeagent.DefaultNetnsPrefix, "prefix of pod netns names")
		netnsDir      = flag.String("netns-dir", nodeagent.DefaultNetnsDir, "where named netns are pinned")
		mountNS       = flag.String("netns-mount-ns", "parent", `mount namespace in which pod netns are pinned: "parent" (the parent process's, i.e. the host's when started by "ip netns exec"), "self", or a path such as /proc/PID/ns/mnt`)
		nodeNetns     = flag.String("node-netns", "", "path of the node netns (default: the process's own)")
		cleanup       = flag.Bool("cleanup-on-exit", false, "on exit, delete every pod netns, veth, the bridge and the state (default: keep them so a restarted agent re-adopts its pods)")
		markNotReady  = flag.Bool("mark-not-ready-on-exit", true, "on exit, set the Node and its pods NotReady")
		unreadyOnTerm = flag.Bool("unready-when-terminating", false, "report terminating pods not ready at once (default: readiness keeps following probes, as with the kubelet)")
		kubeletVer    = flag.String("kubelet-version", nodeagent.DefaultKubeletVersion, "version reported in the Node's nodeInfo")
		leaseDuration = flag.Duration("lease-duration", 40*time.Second, "node Lease duration; renewed every quarter of it")
		statusEvery   = flag.Duration("status-interval", 10*time.Second, "Node status heartbeat interval")
		metricsAddr   = flag.String("metrics-addr", "", "serve Prometheus metrics on this address (off if empty)")
		binaries      = flag.String("binaries", "", `programs of Loadstone's image, "name=path,name=path" (e.g. speaker=/lab/bin/speaker,controller=/lab/bin/controller)`)
		loadstoneRepo = flag.String("loadstone-image", nodeagent.DefaultLoadstoneRepository, "repository of Loadstone's image (any tag)")
		corednsBin    = flag.String("coredns-binary", "", "CoreDNS binary run for the CoreDNS images (empty: such containers fail)")
		clusterDNS    = flag.String("cluster-dns", "", "kube-dns Service IP written to pods' resolv.conf (empty: pods use the host's)")
		clusterDomain = flag.String("cluster-domain", "cluster.local", "cluster domain")
		clusterCA     = flag.String("cluster-ca-file", "", "cluster CA given to pods as ca.crt when the agent writes their service-account files (default: the kube-root-ca.crt ConfigMap)")
		logLevel      = flag.String("log-level", "info", "debug, info, warn or error")
	)
	var kubeletAPI nodeagent.KubeletAPIFlags
	kubeletAPI.Register(flag.CommandLine)
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if *kubeconfig == "" || *nodeName == "" || *stateDir == "" {
		return errors.New("--kubeconfig, --node-name and --state-dir are required")
	}
	var nodeIPs []netip.Addr
	for _, f := range []struct{ name, v string }{{"--node-ip", *nodeIP}, {"--node-ip6", *nodeIP6}} {
		if f.v == "" {
			continue
		}
		a, err := netip.ParseAddr(f.v)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		nodeIPs = append(nodeIPs, a)
	}
	var podCIDRs []netip.Prefix
	for _, f := range []struct{ name, v string }{{"--pod-cidr", *podCIDR}, {"--pod-cidr6", *podCIDR6}} {
		if f.v == "" {
			continue
		}
		p, err := netip.ParsePrefix(f.v)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		podCIDRs = append(podCIDRs, p)
	}

	catalog := nodeagent.ImageCatalog{Binaries: map[string]string{}, CoreDNS: *corednsBin, LoadstoneRepository: *loadstoneRepo}
	for _, kv := range strings.Split(*binaries, ",") {
		if kv == "" {
			continue
		}
		name, path, ok := strings.Cut(kv, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("--binaries: %q is not name=path", kv)
		}
		catalog.Binaries[name] = path
	}
	dns := nodeagent.DNSConfig{Domain: *clusterDomain}
	if *clusterDNS != "" {
		a, err := netip.ParseAddr(*clusterDNS)
		if err != nil {
			return fmt.Errorf("--cluster-dns: %w", err)
		}
		dns.Server = a
	}

	mnt, err := openMountNS(*mountNS)
	if err != nil {
		return fmt.Errorf("--netns-mount-ns: %w", err)
	}
	if mnt != nil {
		defer mnt.Close()
		log.Info("pinning pod netns in another mount namespace", "mountNS", *mountNS)
	}

	restCfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	restCfg.UserAgent = "loadstone-nodeagent/" + *nodeName
	restCfg.QPS, restCfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}

	reg := prometheus.NewRegistry()
	agent, err := nodeagent.New(nodeagent.Config{
		Client:                 client,
		NodeName:               *nodeName,
		NodeIPs:                nodeIPs,
		PodCIDRs:               podCIDRs,
		StateDir:               *stateDir,
		NodeNetnsPath:          *nodeNetns,
		NetnsDir:               *netnsDir,
		NetnsPrefix:            *netnsPrefix,
		MountNS:                mnt,
		Bridge:                 *bridge,
		KubeletVersion:         *kubeletVer,
		CleanupOnExit:          *cleanup,
		MarkNotReadyOnExit:     *markNotReady,
		UnreadyWhenTerminating: *unreadyOnTerm,
		LeaseDuration:          *leaseDuration,
		StatusInterval:         *statusEvery,
		Catalog:                catalog,
		DNS:                    dns,
		ClusterCAFile:          *clusterCA,
		Logger:                 log,
		Registerer:             reg,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *metricsAddr != "" {
		srv := &http.Server{Addr: *metricsAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", "err", err)
			}
		}()
		defer srv.Close()
	}
	if kubeletAPI.Enabled() {
		api, err := nodeagent.NewKubeletAPI(kubeletAPI.Config(*nodeName, agent, client, log, reg))
		if err != nil {
			return err
		}
		go func() {
			if err := api.ListenAndServe(ctx, kubeletAPI.Addr); err != nil {
				log.Error("kubelet API", "err", err)
			}
		}()
	}
	return agent.Run(ctx)
}

// openMountNS resolves --netns-mount-ns; nil means the process's own mount namespace.
func openMountNS(v string) (*os.File, error) {
	var path string
	switch v {
	case "", "self":
		return nil, nil
	case "parent":
		path = fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid())
	default:
		path = v
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var theirs, ours unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &theirs); err != nil {
		f.Close()
		return nil, err
	}
	if err := unix.Stat("/proc/self/ns/mnt", &ours); err != nil {
		f.Close()
		return nil, err
	}
	if theirs.Dev == ours.Dev && theirs.Ino == ours.Ino {
		f.Close()
		return nil, nil
	}
	return f, nil
}
