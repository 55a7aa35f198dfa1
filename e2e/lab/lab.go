package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Default values of Config.
const (
	DefaultDir   = "/tmp/loadstone-lab"
	DefaultNodes = 3
	// K8sVersion and EtcdVersion must match hack/k8s-binaries.sh.
	K8sVersion  = "v1.37.2"
	EtcdVersion = "v3.6.16"
)

// Config describes a lab.
type Config struct {
	// Dir holds state, certificates, kubeconfigs, logs and data. Default DefaultDir, or
	// $LOADSTONE_LAB_DIR.
	Dir string
	// Nodes is the number of nodes (default 3, at most MaxNodes).
	Nodes int
	// K8sBin is the directory with etcd, kube-apiserver, kube-controller-manager,
	// kube-scheduler, kube-proxy and kubectl (default: hack/k8s-binaries.sh's cache).
	K8sBin string
	// RepoRoot is the repository (for building the node agent, controller and speaker, and
	// for config/crd/bases). Default: found from the working directory upwards.
	RepoRoot string
	// CoreDNS is the CoreDNS binary the node agents run for the cluster DNS pods
	// (default: DefaultCoreDNS, which hack/coredns.sh builds).
	CoreDNS string
	// Prebuilt maps a program of the tree ("nodeagent", "controller", "speaker", "lab") to a
	// binary to use instead of building it.
	Prebuilt map[string]string
	// Log receives progress; default discards.
	Log *slog.Logger
}

// Lab is a lab directory and what runs from it.
type Lab struct {
	cfg   Config
	nodes []Node
	pki   pkiPaths
	state *stateStore
	log   *slog.Logger
	// programs are the built binaries (set before the node agents start).
	programs binaries

	mu    sync.Mutex
	waits map[int]chan struct{} // processes this Lab started, closed when reaped
}

// DefaultK8sBin returns $KUBEBUILDER_ASSETS when it holds every binary the lab needs (the
// Makefile sets it for envtest), else hack/k8s-binaries.sh's output directory.
func DefaultK8sBin() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		all := true
		for _, b := range k8sBinaries {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				all = false
			}
		}
		if all {
			return dir
		}
	}
	cache := os.Getenv("LOADSTONE_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "loadstone")
	}
	return filepath.Join(cache, "k8s-"+K8sVersion+"-etcd-"+EtcdVersion, "bin")
}

// FindRepoRoot walks up from dir to the directory holding go.mod.
func FindRepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// K8sBinaries are the programs the lab needs from K8sBin.
var k8sBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubectl"}

// New checks cfg, fills in defaults and returns a Lab; it starts nothing.
func New(cfg Config) (*Lab, error) {
	if cfg.Dir == "" {
		cfg.Dir = os.Getenv("LOADSTONE_LAB_DIR")
	}
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	if cfg.Nodes == 0 {
		cfg.Nodes = DefaultNodes
	}
	if cfg.Nodes < 1 || cfg.Nodes > MaxNodes {
		return nil, fmt.Errorf("lab: %d nodes: must be 1..%d", cfg.Nodes, MaxNodes)
	}
	if cfg.K8sBin == "" {
		cfg.K8sBin = DefaultK8sBin()
	}
	if cfg.CoreDNS == "" {
		cfg.CoreDNS = DefaultCoreDNS()
	}
	if cfg.RepoRoot == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if cfg.RepoRoot, err = FindRepoRoot(wd); err != nil {
			return nil, fmt.Errorf("lab: %w (set Config.RepoRoot)", err)
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Lab{
		cfg:   cfg,
		nodes: Nodes(cfg.Nodes),
		pki:   newPKIPaths(filepath.Join(cfg.Dir, "pki")),
		state: &stateStore{path: filepath.Join(cfg.Dir, stateFile)},
		log:   cfg.Log,
		waits: map[int]chan struct{}{},
	}, nil
}

// Open returns the lab already recorded in cfg.Dir (for status, down, or tests attaching
// to a running lab). The node count comes from the record.
func Open(cfg Config) (*Lab, error) {
	l, err := New(cfg)
	if err != nil {
		return nil, err
	}
	s, err := loadState(l.cfg.Dir)
	if err != nil {
		return nil, err
	}
	if s.Nodes > 0 {
		l.cfg.Nodes = s.Nodes
		l.nodes = Nodes(s.Nodes)
	}
	l.state.s = s
	return l, nil
}

// Dir returns the lab directory.
func (l *Lab) Dir() string { return l.cfg.Dir }

// Nodes returns the lab's nodes.
func (l *Lab) Nodes() []Node { return slices.Clone(l.nodes) }

// K8sBin returns the directory of the Kubernetes binaries.
func (l *Lab) K8sBin() string { return l.cfg.K8sBin }

// AdminKubeconfig is the kubeconfig for kubectl and tests (group system:masters).
func (l *Lab) AdminKubeconfig() string { return l.KubeconfigPath("admin") }

// State returns a copy of what the lab recorded.
func (l *Lab) State() State { return l.state.snapshot() }

// LogPath returns the log file of a process by role name.
func (l *Lab) LogPath(name string) string { return filepath.Join(l.cfg.Dir, "logs", name+".log") }

// checkBinaries reports missing Kubernetes binaries with how to build them.
func (l *Lab) checkBinaries() error {
	if os.Geteuid() != 0 {
		return errors.New("lab: needs root (network namespaces, nftables, FRR): run it as root")
	}
	var missing []string
	for _, b := range k8sBinaries {
		if _, err := os.Stat(filepath.Join(l.cfg.K8sBin, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("lab: %s missing in %s: run hack/k8s-binaries.sh (or `make k8s-binaries`) first",
			strings.Join(missing, ", "), l.cfg.K8sBin)
	}
	if _, err := os.Stat(l.cfg.CoreDNS); err != nil {
		return fmt.Errorf("lab: CoreDNS binary %s missing: run hack/coredns.sh (or `make coredns`) first", l.cfg.CoreDNS)
	}
	for _, tool := range []string{"ip", "nft", "/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/lib/frr/bfdd", "vtysh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("lab: %s not found: run hack/lab-deps.sh first", tool)
		}
	}
	return nil
}

// prepareDir wipes what an earlier run left in the lab directory. It refuses to touch a
// non-empty directory that is not marked as a lab directory.
func (l *Lab) prepareDir() error {
	d := l.cfg.Dir
	entries, err := os.ReadDir(d)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(d, markerFile)); err != nil {
			return fmt.Errorf("lab: %s is not empty and not a lab directory (no %s): refusing to wipe it", d, markerFile)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(d, e.Name())); err != nil {
				return err
			}
		}
	}
	for _, sub := range []string{"", "logs", "bin", "nodes"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(d, markerFile), []byte("loadstone lab directory: `go run ./e2e/cmd/lab down` removes what it describes\n"), 0o644)
}

// Up removes leftovers of earlier runs and brings the whole lab up, Loadstone included.
// Any part that does not build or start is an error. On error the lab is left as it is for
// inspection; Down (or the next Up) removes it.
func (l *Lab) Up(ctx context.Context) error {
	t0 := time.Now()
	if err := l.checkBinaries(); err != nil {
		return err
	}
	l.log.Info("removing leftovers of earlier runs")
	if err := Cleanup(ctx, l.cfg.Dir, l.log); err != nil {
		return err
	}
	if err := l.prepareDir(); err != nil {
		return err
	}
	if err := l.state.update(func(s *State) { *s = State{Nodes: l.cfg.Nodes} }); err != nil {
		return err
	}
	l.log.Info("building the node agent, controller, speaker and lab command from the tree in the background (go build; minutes with a cold build cache)")
	builds := l.buildAll(ctx)

	l.log.Info("generating certificates and kubeconfigs")
	if err := l.generatePKI(); err != nil {
		return fmt.Errorf("lab: pki: %w", err)
	}
	l.log.Info("building the network", "nodes", l.cfg.Nodes)
	if err := l.buildNetwork(ctx); err != nil {
		return fmt.Errorf("lab: network: %w", err)
	}
	l.log.Info("starting FRR in " + RouterNS)
	if err := l.startFRR(); err != nil {
		return fmt.Errorf("lab: frr: %w", err)
	}
	l.log.Info("starting etcd and kube-apiserver in " + ControlPlaneNS)
	if err := l.startAPIServer(); err != nil {
		return fmt.Errorf("lab: control plane: %w", err)
	}
	cs, err := l.waitAPIServer(ctx)
	if err != nil {
		return err
	}
	l.log.Info("applying RBAC, namespaces and CRDs")
	if err := l.bootstrap(ctx); err != nil {
		return fmt.Errorf("lab: bootstrap: %w", err)
	}
	l.log.Info("starting kube-controller-manager and kube-scheduler")
	if err := l.startControllers(); err != nil {
		return fmt.Errorf("lab: control plane: %w", err)
	}
	l.log.Info("waiting for the Go builds")
	bins, err := builds()
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := l.startAPIProxy(ctx, bins.lab); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := l.startNodes(bins); err != nil {
		return fmt.Errorf("lab: nodes: %w", err)
	}
	l.log.Info("waiting for the nodes to be Ready")
	if err := l.waitNodesReady(ctx, cs); err != nil {
		return err
	}
	l.log.Info("deploying CoreDNS (kube-dns at " + KubeDNSIP + ")")
	if err := l.startCoreDNS(ctx, cs); err != nil {
		return fmt.Errorf("lab: cluster DNS: %w", err)
	}
	if err := l.startLoadstone(ctx, bins); err != nil {
		return fmt.Errorf("lab: loadstone: %w", err)
	}
	l.log.Info("lab up", "seconds", fmt.Sprintf("%.1f", time.Since(t0).Seconds()), "dir", l.cfg.Dir)
	return nil
}

// Down stops everything the lab recorded and removes its namespaces and links. The lab
// directory stays (logs remain readable) until the next Up.
func (l *Lab) Down(ctx context.Context) error {
	return Cleanup(ctx, l.cfg.Dir, l.log)
}

// stopOrder ranks process roles for shutdown: Loadstone first, then the node processes
// (agents clean up their pods), then the control plane, then FRR.
func stopOrder(name string) int {
	switch {
	case strings.HasPrefix(name, "speaker-"), name == "loadstone-controller":
		return 0
	case strings.HasPrefix(name, "kube-proxy-"):
		return 1
	case strings.HasPrefix(name, "nodeagent-"):
		return 2
	case name == "kube-scheduler", name == "kube-controller-manager":
		return 3
	case name == "kube-apiserver", name == "apiproxy":
		return 4
	case name == "etcd":
		return 5
	}
	return 6
}

// Cleanup removes what a lab run in dir left: recorded processes (only if /proc still shows
// the same process), then any process inside a namespace named "ls-*", then those
// namespaces and the root-namespace link. It never kills by process name.
func Cleanup(ctx context.Context, dir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := loadState(dir)
	if err != nil {
		log.Warn("unreadable lab state; cleaning by namespace name only", "err", err)
	}
	procs := slices.Clone(s.Procs)
	sort.SliceStable(procs, func(i, j int) bool { return stopOrder(procs[i].Name) < stopOrder(procs[j].Name) })
	var errs []error
	// Stop in order, each rank in parallel.
	for i := 0; i < len(procs); {
		j := i
		for j < len(procs) && stopOrder(procs[j].Name) == stopOrder(procs[i].Name) {
			j++
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, p := range procs[i:j] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := stopProc(p, 5*time.Second, nil); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		i = j
	}
	names, err := labNetns(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range names {
		for _, pid := range netnsPIDs(ctx, ns) {
			log.Info("stopping leftover process inside lab namespace", "netns", ns, "pid", pid)
			killPID(pid, 2*time.Second)
		}
	}
	for _, ns := range names {
		if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	links := append(slices.Clone(s.Links), HostLink)
	for _, l := range links {
		if strings.HasPrefix(l, Prefix) && rootLinkExists(l) {
			if _, err := run(ctx, "ip", "link", "del", l); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(s.Procs) > 0 || len(s.Netns) > 0 {
		s2 := State{Nodes: s.Nodes}
		if _, err := os.Stat(dir); err == nil {
			st := &stateStore{path: filepath.Join(dir, stateFile), s: s2}
			if err := st.update(func(*State) {}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// startProc starts argv inside netns ns, detached (its own session, so it survives the
// command that started the lab), with output appended to logs/NAME.log, and records it.
func (l *Lab) startProc(name, ns string, argv []string) (Proc, error) {
	logPath := l.LogPath(name)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, err
	}
	defer f.Close()
	full := inNetns(ns, argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = l.cfg.Dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "KUBECONFIG=") })
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	start, _, err := procStartTime(cmd.Process.Pid)
	if err != nil {
		return Proc{}, fmt.Errorf("start %s: %w", name, err)
	}
	p := Proc{Name: name, PID: cmd.Process.Pid, StartTime: start, Netns: ns, Argv: argv, Log: logPath}
	// Wait (briefly) until "ip netns exec" has become the program itself.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if a, err := procCmdline(p.PID); err != nil || (len(a) > 0 && a[0] == argv[0]) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	l.mu.Lock()
	l.waits[p.PID] = done
	l.mu.Unlock()
	l.log.Debug("started", "proc", name, "pid", p.PID, "netns", ns)
	return p, l.state.addProc(p)
}

// Proc returns the recorded process with this role name.
func (l *Lab) Proc(name string) (Proc, bool) {
	for _, p := range l.State().Procs {
		if p.Name == name {
			return p, true
		}
	}
	return Proc{}, false
}

// StopProc stops a recorded process (SIGTERM, SIGKILL after grace; grace 0 means SIGKILL at
// once) and forgets it. It returns the record so that StartProc can start it again.
func (l *Lab) StopProc(name string, grace time.Duration) (Proc, error) {
	p, ok := l.Proc(name)
	if !ok {
		return Proc{}, fmt.Errorf("lab: no process %q", name)
	}
	l.mu.Lock()
	done := l.waits[p.PID]
	l.mu.Unlock()
	if grace == 0 {
		if p.Alive() {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return p, err
			}
		}
		waitGone(p, 5*time.Second, done)
	} else if err := stopProc(p, grace, done); err != nil {
		return p, err
	}
	return p, l.state.removeProc(p.PID)
}

// Spawn starts an extra process (a test's peer, a load generator) inside namespace ns and
// records it like the lab's own, so that Down and the next Up remove it.
func (l *Lab) Spawn(name, ns string, argv []string) (Proc, error) {
	return l.startProc(name, ns, argv)
}

// StartProc starts a process again from its record (same role, namespace and argv).
func (l *Lab) StartProc(p Proc) (Proc, error) {
	return l.startProc(p.Name, p.Netns, p.Argv)
}

// startAPIProxy starts the relay that lets the root namespace reach the API server at
// HostAPIAddr, and waits until it accepts connections.
func (l *Lab) startAPIProxy(ctx context.Context, bin string) error {
	p, err := l.startProc("apiproxy", "", []string{bin, "apiproxy", HostAPIAddr, RouterNS, strings.TrimPrefix(APIServerURL, "https://")})
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", HostAPIAddr)
		if err == nil {
			c.Close()
			return nil
		}
		if !p.Alive() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("API relay on %s did not start (is the port taken?); see %s", HostAPIAddr, p.Log)
}
