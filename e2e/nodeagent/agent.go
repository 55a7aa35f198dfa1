package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Config configures an Agent.
type Config struct {
	// Client talks to the API server.
	Client kubernetes.Interface
	// NodeName is the Node's name (also its hostname label and Lease name).
	NodeName string
	// NodeIPs are the node's InternalIPs, IPv4 first.
	NodeIPs []netip.Addr
	// PodCIDRs are the node's pod CIDRs, IPv4 first; the first address of each goes on the
	// bridge.
	PodCIDRs []netip.Prefix
	// StateDir holds the state file (IP allocations and pod namespaces).
	StateDir string
	// NodeNetnsPath names the node's network namespace (e.g. /run/netns/ls-node1): the
	// bridge lives there and probes run from there. Empty: the process's own network
	// namespace (the agent runs under `ip netns exec NODE`).
	NodeNetnsPath string
	// NetnsDir is where named namespaces are pinned (DefaultNetnsDir if empty).
	NetnsDir string
	// NetnsPrefix starts every pod namespace name (DefaultNetnsPrefix if empty).
	NetnsPrefix string
	// MountNS, if set, is the mount namespace in which pod namespaces are pinned (the
	// host's, when the agent runs under `ip netns exec`). The agent does not close it.
	MountNS *os.File
	// Bridge is the per-node bridge's name (DefaultBridge if empty).
	Bridge string
	// Capacity of the node (DefaultCapacity if empty).
	Capacity corev1.ResourceList
	// KubeletVersion reported in nodeInfo (DefaultKubeletVersion if empty).
	KubeletVersion string
	// CleanupOnExit removes every pod namespace, veth, the bridge and the state when Run
	// returns. Without it pods keep their namespace and IPs, and a restarted agent picks
	// them up again (the workload itself stops with the process).
	CleanupOnExit bool
	// MarkNotReadyOnExit sets the Node and its pods NotReady when Run returns, as the node
	// lifecycle controller would after a node stops reporting (the lab runs none).
	MarkNotReadyOnExit bool
	// UnreadyWhenTerminating reports a terminating pod's containers as not ready at once.
	// By default, like the kubelet, readiness of a terminating pod keeps following its
	// probes (EndpointSlices then show it serving and terminating).
	UnreadyWhenTerminating bool
	// LeaseDuration of the node Lease (40s if zero); it is renewed every quarter of it.
	LeaseDuration time.Duration
	// StatusInterval between Node status heartbeats (10s if zero).
	StatusInterval time.Duration
	// Catalog says how containers of each image run (see ImageCatalog): programs on the
	// host with container-runtime semantics, or the built-in workload.
	Catalog ImageCatalog
	// HelperPath is the binary started to run a container's program (it must call
	// RunHelperIfRequested first thing); "/proc/self/exe" (this program) if empty.
	HelperPath string
	// DNS is the cluster DNS written to the pods' resolv.conf; without a server pods use
	// the host's resolv.conf.
	DNS DNSConfig
	// ClusterCAFile is the cluster CA given to pods as ca.crt when the agent makes their
	// service-account files itself (no kube-api-access volume); empty: the namespace's
	// kube-root-ca.crt ConfigMap.
	ClusterCAFile string
	// Backoff of container restarts (DefaultBackoff if zero).
	Backoff Backoff
	// Logger for structured logs (slog.Default() if nil).
	Logger *slog.Logger
	// Registerer for metrics (none if nil).
	Registerer prometheus.Registerer
}

// Agent is the lab's node agent. Create it with New and run it with Run.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	nodeNS  netns.NsHandle
	ns      namespaces
	store   stateStore
	spec    NodeSpec
	metrics *metrics
	prober  prober

	queue    workqueue.TypedRateLimitingInterface[types.NamespacedName]
	informer cache.SharedIndexInformer

	// Only the sync worker touches these (and Run before and after it); it writes pods
	// holding mu, which the Runtime methods read under.
	mu    sync.RWMutex
	pools []*Pool // one per pod CIDR, same order
	state State
	pods  map[types.NamespacedName]*podRun
	// noAnnotate is set once the API refused an annotation patch.
	noAnnotate bool
}

// podRun is one pod the agent runs.
type podRun struct {
	rec       PodRecord
	podNS     netns.NsHandle
	workload  *Workload
	startedAt time.Time
	cancel    context.CancelFunc
	probes    sync.WaitGroup

	// containers are the pod's program containers by name (fixed once the pod runs);
	// names holds every container's name.
	containers map[string]*container
	names      map[string]bool
	// builtin: some container is served by the built-in workload.
	builtin bool
	// terminating: the program containers were sent SIGTERM.
	terminating bool

	mu    sync.Mutex
	ready map[string]*ProbeTracker // by container name
}

func (r *podRun) hasContainer(name string) bool { return r.names[name] }

// containerStates returns the program containers' states by name.
func (r *podRun) containerStates() map[string]ContainerState {
	out := make(map[string]ContainerState, len(r.containers))
	for name, c := range r.containers {
		out[name] = c.State()
	}
	return out
}

// programsExited reports whether every program container has stopped for good.
func (r *podRun) programsExited() bool {
	for _, c := range r.containers {
		if !c.exited() {
			return false
		}
	}
	return true
}

// orphan is a pod known only from the state: nothing of it runs in this process.
func orphan(rec PodRecord) *podRun {
	return &podRun{rec: rec, podNS: netns.None()}
}

func (r *podRun) readiness() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(r.ready))
	for name, t := range r.ready {
		out[name] = t.Ready
	}
	return out
}

// New checks cfg and prepares an agent; nothing is changed until Run.
func New(cfg Config) (*Agent, error) {
	if cfg.Client == nil {
		return nil, errors.New("nodeagent: no API client")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("nodeagent: no node name")
	}
	if len(cfg.NodeIPs) == 0 {
		return nil, errors.New("nodeagent: no node IP")
	}
	if len(cfg.PodCIDRs) == 0 {
		return nil, errors.New("nodeagent: no pod CIDR")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("nodeagent: no state directory")
	}
	if len(cfg.PodCIDRs) == 2 && cfg.PodCIDRs[0].Addr().Is4() == cfg.PodCIDRs[1].Addr().Is4() {
		return nil, errors.New("nodeagent: two pod CIDRs must be of different families")
	}
	if len(cfg.PodCIDRs) > 2 {
		return nil, errors.New("nodeagent: at most one pod CIDR per family")
	}
	if cfg.NetnsDir == "" {
		cfg.NetnsDir = DefaultNetnsDir
	}
	if cfg.NetnsPrefix == "" {
		cfg.NetnsPrefix = DefaultNetnsPrefix
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if !validIfName(cfg.Bridge) {
		return nil, fmt.Errorf("nodeagent: invalid bridge name %q", cfg.Bridge)
	}
	if cfg.KubeletVersion == "" {
		cfg.KubeletVersion = DefaultKubeletVersion
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = 40 * time.Second
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HelperPath == "" {
		cfg.HelperPath = "/proc/self/exe"
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	a := &Agent{
		cfg:     cfg,
		log:     cfg.Logger.With("node", cfg.NodeName),
		ns:      namespaces{dir: cfg.NetnsDir, mountNS: cfg.MountNS},
		store:   stateStore{dir: cfg.StateDir},
		metrics: newMetrics(cfg.Registerer),
		pods:    map[types.NamespacedName]*podRun{},
	}
	for _, p := range cfg.PodCIDRs {
		pool, err := NewPool(p)
		if err != nil {
			return nil, fmt.Errorf("nodeagent: %w", err)
		}
		a.pools = append(a.pools, pool)
	}
	if cfg.Capacity == nil {
		cfg.Capacity = DefaultCapacity(min(a.pools[0].Usable(), 250))
		a.cfg.Capacity = cfg.Capacity
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	a.spec = NodeSpec{
		Name:           cfg.NodeName,
		IPs:            cfg.NodeIPs,
		PodCIDRs:       cfg.PodCIDRs,
		Capacity:       cfg.Capacity,
		KubeletVersion: cfg.KubeletVersion,
		KernelVersion:  unix.ByteSliceToString(uts.Release[:]),
	}
	nodeNS, err := netns.Get()
	if cfg.NodeNetnsPath != "" {
		nodeNS, err = netns.GetFromPath(cfg.NodeNetnsPath)
	}
	if err != nil {
		return nil, fmt.Errorf("nodeagent: node netns: %w", err)
	}
	a.nodeNS = nodeNS
	a.prober = prober{nodeNS: a.nodeNS}
	return a, nil
}

// Run registers the node, then runs the pods bound to it until ctx ends. It returns an
// error only when it could not start; after ctx ends it shuts down as configured.
func (a *Agent) Run(ctx context.Context) error {
	defer a.nodeNS.Close()
	if err := a.loadState(); err != nil {
		return err
	}
	var gws []netip.Prefix
	for _, p := range a.pools {
		gws = append(gws, netip.PrefixFrom(p.Gateway(), p.Prefix().Bits()))
	}
	if err := EnsureBridge(a.nodeNS, BridgeSpec{Name: a.cfg.Bridge, Gateways: gws}, a.cfg.NodeName); err != nil {
		return fmt.Errorf("nodeagent: bridge: %w", err)
	}
	a.log.Info("bridge ready", "iface", a.cfg.Bridge, "gateways", gws)

	if err := a.registerNode(ctx); err != nil {
		return err
	}

	factory := informers.NewSharedInformerFactoryWithOptions(a.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName=" + a.cfg.NodeName
		}))
	a.informer = factory.Core().V1().Pods().Informer()
	a.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](100*time.Millisecond, 10*time.Second),
		workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "nodeagent-pods"})
	enqueue := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if pod, ok := obj.(*corev1.Pod); ok {
			a.queue.Add(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
		}
	}
	if _, err := a.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("nodeagent: pod handler: %w", err)
	}
	informerCtx, stopInformer := context.WithCancel(context.Background())
	defer stopInformer()
	go a.informer.RunWithContext(informerCtx)
	if !cache.WaitForCacheSync(ctx.Done(), a.informer.HasSynced) {
		a.queue.ShutDown()
		return fmt.Errorf("nodeagent: pod cache did not sync: %w", ctx.Err())
	}
	a.cleanupOrphans()
	a.removeGonePodDirs()
	// Pods in the state whose objects still exist are adopted by their first sync.

	var wg sync.WaitGroup
	wg.Go(func() { a.heartbeat(ctx) })
	wg.Go(func() {
		for a.processNext(ctx) {
		}
	})
	a.log.Info("node agent running", "podCIDRs", a.cfg.PodCIDRs, "stateDir", a.cfg.StateDir)
	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
	stopInformer()
	a.shutdown()
	return nil
}

func (a *Agent) loadState() error {
	st, err := a.store.Load()
	if err != nil {
		return fmt.Errorf("nodeagent: %w", err)
	}
	if st.Node != "" && st.Node != a.cfg.NodeName {
		return fmt.Errorf("nodeagent: state in %s belongs to node %s, not %s", a.cfg.StateDir, st.Node, a.cfg.NodeName)
	}
	st.Node = a.cfg.NodeName
	for _, rec := range st.Pods {
		for _, ip := range rec.IPs {
			if pool := a.poolFor(ip); pool != nil {
				if err := pool.Reserve(ip); err != nil {
					a.log.Warn("state: cannot reserve pod IP", "pod", rec.Key(), "ip", ip, "err", err)
				}
			}
		}
	}
	for _, pool := range a.pools {
		if last, ok := st.Last[pool.Prefix().String()]; ok {
			pool.SetLast(last)
		}
	}
	a.state = st
	return nil
}

func (a *Agent) poolFor(ip netip.Addr) *Pool {
	for _, p := range a.pools {
		if p.Prefix().Contains(ip) {
			return p
		}
	}
	return nil
}

func (a *Agent) saveState() error {
	a.state.Last = map[string]netip.Addr{}
	for _, p := range a.pools {
		a.state.Last[p.Prefix().String()] = p.Last()
	}
	return a.store.Save(a.state)
}

func (a *Agent) record(uid types.UID) (PodRecord, bool) {
	for _, r := range a.state.Pods {
		if r.UID == uid {
			return r, true
		}
	}
	return PodRecord{}, false
}

// cleanupOrphans tears down pods in the state whose objects are gone (deleted while the
// agent was down).
func (a *Agent) cleanupOrphans() {
	live := map[types.UID]bool{}
	for _, obj := range a.informer.GetStore().List() {
		live[obj.(*corev1.Pod).UID] = true
	}
	for _, rec := range append([]PodRecord(nil), a.state.Pods...) {
		if live[rec.UID] {
			continue
		}
		a.log.Info("cleaning up pod deleted while the agent was away", "pod", rec.Key(), "netns", rec.Netns)
		a.teardown(orphan(rec))
	}
}

func (a *Agent) processNext(ctx context.Context) bool {
	key, shutdown := a.queue.Get()
	if shutdown {
		return false
	}
	defer a.queue.Done(key)
	if err := a.sync(ctx, key); err != nil {
		a.metrics.syncs.WithLabelValues("error").Inc()
		if apierrors.IsConflict(err) {
			// Our copy was stale; the watch brings the new one.
			a.log.Debug("pod sync conflict; retrying", "pod", key)
			a.queue.AddRateLimited(key)
			return true
		}
		a.log.Warn("pod sync failed; will retry", "pod", key, "err", err)
		a.queue.AddRateLimited(key)
		return true
	}
	a.metrics.syncs.WithLabelValues("ok").Inc()
	a.queue.Forget(key)
	return true
}

// sync brings one pod to what its object asks: started, reported, or killed and deleted.
func (a *Agent) sync(ctx context.Context, key types.NamespacedName) error {
	obj, exists, err := a.informer.GetStore().GetByKey(key.String())
	if err != nil {
		return err
	}
	run := a.pods[key]
	if !exists {
		if run != nil {
			a.log.Info("pod object gone; killing it", "pod", key)
			a.teardown(run)
		}
		a.removeGonePodDirs()
		return nil
	}
	pod := obj.(*corev1.Pod)
	if run != nil && run.rec.UID != pod.UID {
		a.teardown(run)
		run = nil
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Finished: the network goes, the logs stay until the object does.
		if run != nil {
			a.teardownKeepLogs(run)
		}
		if pod.DeletionTimestamp != nil {
			a.removePodDir(pod.UID)
			return a.deletePod(ctx, pod)
		}
		return nil
	}
	if pod.DeletionTimestamp != nil {
		killAt := pod.DeletionTimestamp.Time
		if run != nil && !run.terminating {
			// SIGTERM now, SIGKILL when the grace period ends.
			run.terminating = true
			for _, c := range run.containers {
				c.stop(time.Until(killAt))
			}
		}
		if pod.Annotations[ExitOnSigtermAnnotation] == "true" || (run != nil && !run.builtin && run.programsExited()) {
			killAt = time.Time{}
		}
		if run != nil && time.Now().Before(killAt) {
			// Terminating: keep serving until the grace period ends.
			a.queue.AddAfter(key, time.Until(killAt))
			return a.updateStatus(ctx, pod, run)
		}
		if run != nil {
			a.log.Info("grace period over; killing pod", "pod", key)
			a.teardown(run)
		} else if rec, ok := a.record(pod.UID); ok {
			a.teardown(orphan(rec))
		}
		return a.deletePod(ctx, pod)
	}
	if run == nil {
		if run, err = a.start(pod); err != nil {
			rt := a.runtimeOf(pod, nil)
			rt.StartError = err.Error()
			st := PodStatus(pod, rt, time.Now())
			if !apiequality.Semantic.DeepEqual(st, pod.Status) {
				p := pod.DeepCopy()
				p.Status = st
				if _, uerr := a.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); uerr != nil {
					a.log.Debug("report start error", "pod", key, "err", uerr)
				}
			}
			return fmt.Errorf("start pod: %w", err)
		}
	}
	if run.workload != nil {
		run.workload.SetUnhealthy(pod.Annotations[UnhealthyAnnotation] == "true")
	}
	if pod.Annotations[NetnsAnnotation] != run.rec.Netns && !a.noAnnotate {
		patched, err := a.annotate(ctx, pod, run.rec.Netns)
		switch {
		case apierrors.IsForbidden(err):
			// A node identity may not touch pod metadata (Node authorizer, NodeRestriction):
			// the netns name is NetnsName's, known to anyone with the prefix.
			a.noAnnotate = true
			a.log.Info("not allowed to annotate pods; pod netns names are not recorded in the API", "annotation", NetnsAnnotation, "err", err)
		case err != nil:
			a.log.Warn("cannot annotate pod with its netns", "pod", key, "err", err)
		default:
			pod = patched
		}
	}
	return a.updateStatus(ctx, pod, run)
}

// start gives a pod its namespace, veth, addresses, built-in workload and programs, and
// starts its probes.
func (a *Agent) start(pod *corev1.Pod) (*podRun, error) {
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	hostNet := pod.Spec.HostNetwork
	rec, adopted := a.record(pod.UID)
	if !adopted {
		rec = PodRecord{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name, HostNetwork: hostNet}
		if !hostNet {
			rec.Netns = NetnsName(a.cfg.NetnsPrefix, a.cfg.NodeName, pod.UID)
			rec.HostVeth = HostVethName(pod.UID)
			for _, pool := range a.pools {
				ip, err := pool.Allocate()
				if err != nil {
					for _, got := range rec.IPs {
						a.poolFor(got).Release(got)
					}
					return nil, err
				}
				rec.IPs = append(rec.IPs, ip)
			}
		}
		// Persist the allocation before creating anything, so that a crash never leaves
		// a namespace the state does not know about.
		a.state.Pods = append(a.state.Pods, rec)
		if err := a.saveState(); err != nil {
			return nil, err
		}
	}
	podNS := netns.None()
	workNS := a.nodeNS
	if !hostNet {
		var err error
		if podNS, err = a.ns.Ensure(rec.Netns); err != nil {
			return nil, err
		}
		spec := PodNetSpec{Bridge: a.cfg.Bridge, HostVeth: rec.HostVeth}
		for _, ip := range rec.IPs {
			pool := a.poolFor(ip)
			if pool == nil {
				podNS.Close()
				return nil, fmt.Errorf("pod IP %s is in none of the pod CIDRs", ip)
			}
			spec.Addrs = append(spec.Addrs, netip.PrefixFrom(ip, pool.Prefix().Bits()))
			spec.Gateways = append(spec.Gateways, pool.Gateway())
		}
		if err := SetupPodNet(a.nodeNS, podNS, spec); err != nil {
			podNS.Close()
			return nil, err
		}
		workNS = podNS
	}
	launches := map[string]Launch{}
	var ports []WorkloadPort
	seen := map[WorkloadPort]bool{}
	run := &podRun{rec: rec, podNS: podNS, startedAt: time.Now(), ready: map[string]*ProbeTracker{},
		containers: map[string]*container{}, names: map[string]bool{}}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		l := a.cfg.Catalog.Resolve(c)
		launches[c.Name] = l
		run.names[c.Name] = true
		if l.Kind != LaunchBuiltin {
			continue
		}
		run.builtin = true
		for _, p := range containerPorts(c, l) {
			if !seen[p] {
				seen[p] = true
				ports = append(ports, p)
			}
		}
	}
	if run.builtin {
		w, err := StartWorkload(workNS, Identity{Pod: pod.Name, Node: a.cfg.NodeName}, ports, a.log.With("pod", key))
		if err != nil {
			if podNS.IsOpen() {
				podNS.Close()
			}
			return nil, err
		}
		run.workload = w
		a.writeBuiltinLogs(pod, launches, ports)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run.cancel = cancel
	for i := range pod.Spec.Containers {
		c := pod.Spec.Containers[i].DeepCopy()
		if launches[c.Name].Kind != LaunchBuiltin {
			continue
		}
		tracker := &ProbeTracker{}
		run.ready[c.Name] = tracker
		if c.ReadinessProbe == nil {
			tracker.Ready = true
			continue
		}
		observe := func(ok bool, success, failure int32) bool {
			if !ok {
				a.metrics.probeErrors.Inc()
			}
			run.mu.Lock()
			defer run.mu.Unlock()
			return tracker.Observe(ok, success, failure)
		}
		probeIP := a.probeIP(run)
		run.probes.Go(func() {
			a.prober.run(ctx, probeIP, c, c.ReadinessProbe, observe, func() { a.queue.Add(key) })
		})
	}
	a.startPrograms(pod, run, launches)
	a.mu.Lock()
	a.pods[key] = run
	a.mu.Unlock()
	a.metrics.podStarts.Inc()
	a.metrics.pods.Set(float64(len(a.pods)))
	verb := "started pod"
	if adopted {
		verb = "re-adopted pod"
	}
	a.log.Info(verb, "pod", key, "netns", rec.Netns, "ips", rec.IPs, "hostNetwork", hostNet, "builtinPorts", len(ports), "programs", len(run.containers))
	return run, nil
}

// writeBuiltinLogs gives each built-in workload container a log file saying what it
// serves, so `kubectl logs` works on it too.
func (a *Agent) writeBuiltinLogs(pod *corev1.Pod, launches map[string]Launch, ports []WorkloadPort) {
	for _, c := range pod.Spec.Containers {
		if launches[c.Name].Kind != LaunchBuiltin {
			continue
		}
		dir := a.containerLogDir(pod.UID, c.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			a.log.Warn("built-in workload log", "err", err)
			continue
		}
		line := fmt.Sprintf("%s built-in workload of the lab node agent for image %s: pod=%s node=%s ports=%v\n",
			time.Now().UTC().Format(time.RFC3339), c.Image, pod.Name, a.cfg.NodeName, ports)
		if err := os.WriteFile(filepath.Join(dir, "0.log"), []byte(line), 0o644); err != nil {
			a.log.Warn("built-in workload log", "err", err)
		}
	}
}

// stop ends a pod's programs, probes and workload, keeping its network.
func (run *podRun) stop() {
	for _, c := range run.containers {
		c.kill()
	}
	if run.cancel != nil {
		run.cancel()
	}
	run.probes.Wait()
	if run.workload != nil {
		run.workload.Stop()
	}
}

// teardown kills a pod: programs, workload, veth, namespace, IPs, record, files. Errors
// are logged: the lab's teardown removes leftovers by name prefix anyway.
func (a *Agent) teardown(run *podRun) {
	a.teardownKeepLogs(run)
	a.removePodDir(run.rec.UID)
}

// removePodDir deletes a pod's files (volumes, logs).
func (a *Agent) removePodDir(uid types.UID) {
	if err := os.RemoveAll(a.podDir(uid)); err != nil {
		a.log.Warn("remove pod directory", "err", err)
	}
}

// removeGonePodDirs deletes the files of pods whose objects are gone.
func (a *Agent) removeGonePodDirs() {
	entries, err := os.ReadDir(filepath.Join(a.cfg.StateDir, "pods"))
	if err != nil {
		return
	}
	live := map[types.UID]bool{}
	for _, obj := range a.informer.GetStore().List() {
		live[obj.(*corev1.Pod).UID] = true
	}
	for _, rec := range a.state.Pods {
		live[rec.UID] = true
	}
	for _, e := range entries {
		if !live[types.UID(e.Name())] {
			a.removePodDir(types.UID(e.Name()))
		}
	}
}

// teardownKeepLogs is teardown that keeps the pod's files (a finished pod's logs).
func (a *Agent) teardownKeepLogs(run *podRun) {
	run.stop()
	if run.podNS.IsOpen() {
		run.podNS.Close()
	}
	if run.rec.HostVeth != "" {
		if err := TeardownPodNet(a.nodeNS, run.rec.HostVeth); err != nil {
			a.log.Warn("delete pod veth", "pod", run.rec.Key(), "iface", run.rec.HostVeth, "err", err)
		}
	}
	if run.rec.Netns != "" {
		if err := a.ns.Delete(run.rec.Netns); err != nil {
			a.log.Warn("delete pod netns", "pod", run.rec.Key(), "netns", run.rec.Netns, "err", err)
		}
	}
	for _, ip := range run.rec.IPs {
		if pool := a.poolFor(ip); pool != nil {
			pool.Release(ip)
		}
	}
	kept := a.state.Pods[:0]
	for _, r := range a.state.Pods {
		if r.UID != run.rec.UID {
			kept = append(kept, r)
		}
	}
	a.state.Pods = kept
	if err := a.saveState(); err != nil {
		a.log.Warn("save state", "err", err)
	}
	a.mu.Lock()
	if cur, ok := a.pods[run.rec.Key()]; ok && cur == run {
		delete(a.pods, run.rec.Key())
	}
	a.mu.Unlock()
	a.metrics.podKills.Inc()
	a.metrics.pods.Set(float64(len(a.pods)))
	a.log.Info("pod cleaned up", "pod", run.rec.Key(), "netns", run.rec.Netns)
}

// deletePod removes a killed pod's object for good, as the kubelet does.
func (a *Agent) deletePod(ctx context.Context, pod *corev1.Pod) error {
	zero := int64(0)
	uid := pod.UID
	err := a.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete pod object: %w", err)
	}
	a.log.Info("pod object deleted", "pod", types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
	return nil
}

func (a *Agent) annotate(ctx context.Context, pod *corev1.Pod, netnsName string) (*corev1.Pod, error) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{NetnsAnnotation: netnsName},
	}})
	if err != nil {
		return nil, err
	}
	return a.cfg.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
}

func (a *Agent) runtimeOf(pod *corev1.Pod, run *podRun) PodRuntime {
	rt := PodRuntime{HostIPs: a.cfg.NodeIPs}
	if run == nil {
		return rt
	}
	rt.PodIPs = run.rec.IPs
	if run.rec.HostNetwork {
		rt.PodIPs = a.cfg.NodeIPs
	}
	rt.StartedAt = run.startedAt
	rt.Ready = run.readiness()
	rt.Containers = run.containerStates()
	if pod.DeletionTimestamp != nil && a.cfg.UnreadyWhenTerminating {
		rt.Ready = nil
	}
	return rt
}

func (a *Agent) updateStatus(ctx context.Context, pod *corev1.Pod, run *podRun) error {
	st := PodStatus(pod, a.runtimeOf(pod, run), time.Now())
	if apiequality.Semantic.DeepEqual(st, pod.Status) {
		return nil
	}
	p := pod.DeepCopy()
	p.Status = st
	_, err := a.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update pod status: %w", err)
	}
	return nil
}

// registerNode creates or updates the Node and its status, retrying until it works or ctx
// ends. A podCIDR conflict is returned at once.
func (a *Agent) registerNode(ctx context.Context) error {
	for {
		err := a.ensureNode(ctx)
		if err == nil {
			a.log.Info("node registered")
			return nil
		}
		if errors.Is(err, ErrPodCIDRConflict) {
			return fmt.Errorf("nodeagent: %w", err)
		}
		a.log.Warn("node registration failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodeagent: register node: %w", err)
		case <-time.After(time.Second):
		}
	}
}

func (a *Agent) ensureNode(ctx context.Context) error {
	nodes := a.cfg.Client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		node = &corev1.Node{}
		if _, err := ApplyNodeSpec(node, a.spec); err != nil {
			return err
		}
		if node, err = nodes.Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node: %w", err)
		}
	case err != nil:
		return fmt.Errorf("get node: %w", err)
	default:
		changed, err := ApplyNodeSpec(node, a.spec)
		if err != nil {
			return err
		}
		if changed {
			if node, err = nodes.Update(ctx, node, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update node: %w", err)
			}
		}
	}
	return a.writeNodeStatus(ctx, node, true, "KubeletReady", "lab node agent is posting ready status")
}

func (a *Agent) writeNodeStatus(ctx context.Context, node *corev1.Node, ready bool, reason, message string) error {
	// A merge patch of the status alone: an update would carry the whole (possibly stale)
	// object, and NodeRestriction refuses a node that seems to drop taints others added.
	status := NodeStatus(node.Status, a.spec, ready, reason, message, time.Now())
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return fmt.Errorf("node status patch: %w", err)
	}
	if _, err := a.cfg.Client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("patch node status: %w", err)
	}
	return nil
}

// heartbeat renews the node Lease and refreshes the Node's Ready condition until ctx ends.
func (a *Agent) heartbeat(ctx context.Context) {
	leaseEvery := a.cfg.LeaseDuration / 4
	renew := time.NewTicker(leaseEvery)
	defer renew.Stop()
	status := time.NewTicker(a.cfg.StatusInterval)
	defer status.Stop()
	if err := a.renewLease(ctx); err != nil {
		a.log.Warn("renew node lease", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("renew node lease", "err", err)
			}
		case <-status.C:
			if err := a.ensureNode(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("node status heartbeat", "err", err)
			}
		}
	}
}

func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.cfg.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	seconds := int32(a.cfg.LeaseDuration / time.Second)
	holder := a.cfg.NodeName
	lease, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: corev1.NamespaceNodeLease},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &now},
		}
		if node, err := a.cfg.Client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{}); err == nil {
			lease.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.HolderIdentity = &holder
	lease.Spec.LeaseDurationSeconds = &seconds
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// shutdown runs after the worker has stopped.
func (a *Agent) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, run := range a.pods {
		run.stop()
	}
	if a.cfg.MarkNotReadyOnExit {
		a.markNotReady(ctx)
	}
	if a.cfg.CleanupOnExit {
		for _, run := range a.pods {
			a.teardown(run)
		}
		for _, rec := range append([]PodRecord(nil), a.state.Pods...) {
			a.teardown(orphan(rec))
		}
		if err := DeleteBridge(a.nodeNS, a.cfg.Bridge); err != nil {
			a.log.Warn("delete bridge", "iface", a.cfg.Bridge, "err", err)
		}
		if err := a.store.Remove(); err != nil {
			a.log.Warn("remove state", "err", err)
		}
		a.log.Info("node agent stopped and cleaned up")
		return
	}
	for _, run := range a.pods {
		if run.podNS.IsOpen() {
			run.podNS.Close()
		}
	}
	a.log.Info("node agent stopped; pod namespaces kept for the next start", "pods", len(a.state.Pods))
}

// markNotReady sets the Node's and the running pods' Ready conditions to False.
func (a *Agent) markNotReady(ctx context.Context) {
	node, err := a.cfg.Client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if err == nil {
		err = a.writeNodeStatus(ctx, node, false, "NodeAgentStopped", "lab node agent stopped")
	}
	if err != nil {
		a.log.Warn("mark node not ready", "err", err)
	}
	for key := range a.pods {
		pod, err := a.cfg.Client.CoreV1().Pods(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		p := pod.DeepCopy()
		for i := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[i].Ready = false
		}
		setCondition(&p.Status, corev1.ContainersReady, corev1.ConditionFalse, "NodeAgentStopped", now, false)
		setCondition(&p.Status, corev1.PodReady, corev1.ConditionFalse, "NodeAgentStopped", now, false)
		if _, err := a.cfg.Client.CoreV1().Pods(key.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			a.log.Warn("mark pod not ready", "pod", key, "err", err)
		}
	}
}
