package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podDir is the pod's directory in the state directory: volumes, logs, resolv.conf.
func (a *Agent) podDir(uid types.UID) string {
	return filepath.Join(a.cfg.StateDir, "pods", string(uid))
}

// containerLogDir holds the log files of a container, one per instance (N.log).
func (a *Agent) containerLogDir(uid types.UID, name string) string {
	return filepath.Join(a.podDir(uid), "logs", name)
}

// kubernetesServiceEnv reads the "kubernetes" Service for the service variables; nil when
// it cannot be read.
func (a *Agent) kubernetesServiceEnv(ctx context.Context) map[string]string {
	svc, err := a.cfg.Client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			a.log.Debug("read the kubernetes Service for pod env", "err", err)
		}
		return nil
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || len(svc.Spec.Ports) == 0 {
		return nil
	}
	return ServiceEnv(ip, svc.Spec.Ports[0].Port)
}

// securityIDs returns the uid, gid and supplemental groups of container c of pod.
func securityIDs(pod *corev1.Pod, c *corev1.Container) (uid, gid uint32, groups []uint32) {
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			uid = uint32(*psc.RunAsUser)
		}
		if psc.RunAsGroup != nil {
			gid = uint32(*psc.RunAsGroup)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = uint32(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			gid = uint32(*sc.RunAsGroup)
		}
	}
	groups = []uint32{gid}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.FSGroup != nil {
			groups = append(groups, uint32(*psc.FSGroup))
		}
		for _, g := range psc.SupplementalGroups {
			groups = append(groups, uint32(g))
		}
	}
	return uid, gid, groups
}

// programSpec computes the helper spec of program container c (everything but argv's
// expansion inputs come from the pod).
func (a *Agent) programSpec(ctx context.Context, pod *corev1.Pod, c *corev1.Container, launch Launch, rec PodRecord, src EnvSources, vols map[string]string, saDir, resolv string) (helperSpec, error) {
	src.PodIPs = rec.IPs
	if pod.Spec.HostNetwork {
		src.PodIPs = a.cfg.NodeIPs
	}
	src.HostIPs = a.cfg.NodeIPs
	env, err := ContainerEnv(pod, c, src)
	if err != nil {
		return helperSpec{}, err
	}
	envMap := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		envMap[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := envMap[k]; return v, ok }
	argv := make([]string, len(launch.Argv))
	for i, s := range launch.Argv {
		argv[i] = Expand(s, lookup)
	}
	caps, err := ContainerCapabilities(c.SecurityContext)
	if err != nil {
		return helperSpec{}, err
	}
	uid, gid, groups := securityIDs(pod, c)
	home := "/root"
	if uid != 0 {
		home = "/"
	}
	if _, ok := envMap["HOME"]; !ok {
		env = append(env, "HOME="+home)
	}
	spec := helperSpec{
		Argv: argv, Env: env, Dir: c.WorkingDir,
		NewMountNS: true,
		UID:        uid, GID: gid, Groups: groups, Caps: caps,
		NoNewPrivs: c.SecurityContext != nil && c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation,
	}
	if !pod.Spec.HostNetwork {
		spec.NetnsPath = filepath.Join(a.cfg.NetnsDir, rec.Netns)
		spec.RemountSys = true
	} else if a.cfg.NodeNetnsPath != "" {
		spec.NetnsPath = a.cfg.NodeNetnsPath
	}
	saMounted := false
	for _, m := range c.VolumeMounts {
		src, ok := vols[m.Name]
		if !ok {
			return helperSpec{}, fmt.Errorf("volume mount %s: no volume of that name", m.Name)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, m.SubPath)
		}
		if filepath.Clean(m.MountPath) == ServiceAccountDir {
			saMounted = true
		}
		spec.Mounts = append(spec.Mounts, helperMount{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	if !saMounted && saDir != "" {
		spec.Mounts = append(spec.Mounts, helperMount{Source: saDir, Target: ServiceAccountDir, ReadOnly: true})
	}
	if resolv != "" {
		spec.Mounts = append(spec.Mounts, helperMount{Source: resolv, Target: "/etc/resolv.conf", ReadOnly: true})
	}
	return spec, nil
}

// podFiles are a pod's prepared files and sources, made once for all its containers.
type podFiles struct {
	mu     sync.Mutex
	done   bool
	src    EnvSources
	vols   map[string]string
	saDir  string
	resolv string
}

// prepare makes the pod's files (volumes, service-account files, resolv.conf) unless
// done already. It is retried by each container until it succeeds: the Node authorizer
// may not yet allow the Secrets of a pod that was just bound.
func (a *Agent) preparePod(ctx context.Context, pod *corev1.Pod, launches map[string]Launch, f *podFiles) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return nil
	}
	dir := a.podDir(pod.UID)
	src, err := a.fetchSources(ctx, pod)
	if err != nil {
		return err
	}
	src.Services = a.kubernetesServiceEnv(ctx)
	vols, err := a.podVolumes(ctx, pod, dir, src)
	if err != nil {
		return err
	}
	needSA := false
	for _, c := range pod.Spec.Containers {
		if launches[c.Name].Kind != LaunchProgram {
			continue
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || filepath.Clean(m.MountPath) == ServiceAccountDir
		}
		needSA = needSA || !mounted
	}
	saDir := ""
	if needSA {
		if saDir, err = a.serviceAccountVolume(ctx, pod, dir); err != nil {
			return err
		}
	}
	resolv := ""
	if text := ResolvConf(pod, a.cfg.DNS); text != "" {
		resolv = filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(resolv, []byte(text), 0o644); err != nil {
			return err
		}
	}
	f.done, f.src, f.vols, f.saDir, f.resolv = true, src, vols, saDir, resolv
	return nil
}

// startPrograms starts the pod's program containers. Each prepares its spec before its
// first instance; a container whose configuration fails (a missing Secret, say) waits
// with the reason (CreateContainerConfigError) and tries again, as with the kubelet.
func (a *Agent) startPrograms(pod *corev1.Pod, run *podRun, launches map[string]Launch) {
	key := run.rec.Key()
	grace := 30 * time.Second
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	files := &podFiles{}
	pod = pod.DeepCopy()
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		l := launches[c.Name]
		if l.Kind != LaunchProgram {
			continue
		}
		ct := &container{
			name: c.Name, podKey: key.String(), helper: a.cfg.HelperPath,
			policy: pod.Spec.RestartPolicy, grace: grace, backoff: a.cfg.Backoff,
			logDir: a.containerLogDir(pod.UID, c.Name),
			log:    a.log.With("pod", key),
			changed: func() {
				if q := a.queue; q != nil {
					q.Add(key)
				}
			},
		}
		ct.prepare = func(ctx context.Context) (helperSpec, string, error) {
			if l.Error != "" {
				return helperSpec{}, "CreateContainerError", errors.New(l.Error)
			}
			if err := a.preparePod(ctx, pod, launches, files); err != nil {
				return helperSpec{}, "CreateContainerConfigError", err
			}
			spec, err := a.programSpec(ctx, pod, c, l, run.rec, files.src, files.vols, files.saDir, files.resolv)
			if err != nil {
				return helperSpec{}, "CreateContainerConfigError", err
			}
			return spec, "", nil
		}
		ct.onInstance = func(ictx context.Context, pid int) { a.startProbes(ictx, run, ct, c) }
		run.containers[c.Name] = ct
		ct.start()
	}
}

// startProbes runs the probes of one instance of a program container: the startup probe
// until it passes, then liveness (a failure kills the instance) and readiness.
func (a *Agent) startProbes(ctx context.Context, run *podRun, ct *container, c *corev1.Container) {
	key := run.rec.Key()
	tracker := &ProbeTracker{}
	run.mu.Lock()
	run.ready[c.Name] = tracker
	if c.ReadinessProbe == nil {
		tracker.Ready = true
	}
	run.mu.Unlock()
	podIP := a.probeIP(run)
	target := probeTarget{ip: podIP, exec: func(ctx context.Context, cmd []string) error {
		return a.execIn(ctx, run, ct, cmd, nil, nil, nil, false, nil)
	}}
	changed := func() { a.queue.Add(key) }
	run.probes.Go(func() {
		if c.StartupProbe != nil {
			if !a.prober.untilPasses(ctx, target, c, c.StartupProbe) {
				if ctx.Err() == nil {
					ct.log.Info("startup probe failed; killing the container", "container", c.Name)
					ct.terminate(ct.grace)
				}
				return
			}
		}
		ct.setState(func(s *ContainerState) { s.Started = true })
		if c.LivenessProbe != nil {
			run.probes.Go(func() {
				if !a.prober.untilFails(ctx, target, c, c.LivenessProbe) || ctx.Err() != nil {
					return
				}
				ct.log.Info("liveness probe failed; killing the container", "container", c.Name)
				ct.terminate(ct.grace)
			})
		}
		if c.ReadinessProbe != nil {
			observe := func(ok bool, success, failure int32) bool {
				if !ok {
					a.metrics.probeErrors.Inc()
				}
				run.mu.Lock()
				defer run.mu.Unlock()
				return tracker.Observe(ok, success, failure)
			}
			a.prober.runTarget(ctx, target, c, c.ReadinessProbe, observe, changed)
		}
	})
}

// probeIP is the address probes connect to: the pod's first IP (the node's for a
// hostNetwork pod).
func (a *Agent) probeIP(run *podRun) netip.Addr {
	if len(run.rec.IPs) > 0 {
		return run.rec.IPs[0]
	}
	return a.cfg.NodeIPs[0]
}
