package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

var _ Runtime = (*Agent)(nil)

// runByUID returns the pod the agent runs with that UID.
func (a *Agent) runByUID(uid types.UID) (*podRun, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, r := range a.pods {
		if r.rec.UID == uid {
			return r, true
		}
	}
	return nil, false
}

// PodUID implements Runtime: pods bound to this node, running or finished (their logs
// stay until the Pod object goes).
func (a *Agent) PodUID(namespace, name string) (types.UID, bool) {
	a.mu.RLock()
	run := a.pods[types.NamespacedName{Namespace: namespace, Name: name}]
	inf := a.informer
	a.mu.RUnlock()
	if run != nil {
		return run.rec.UID, true
	}
	if inf == nil {
		return "", false
	}
	obj, ok, err := inf.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return "", false
	}
	pod := obj.(*corev1.Pod)
	if _, err := os.Stat(a.podDir(pod.UID)); err != nil {
		return "", false
	}
	return pod.UID, true
}

// LogPath implements Runtime.
func (a *Agent) LogPath(podUID types.UID, name string, previous bool) (string, error) {
	dir := a.containerLogDir(podUID, name)
	if _, err := os.Stat(a.podDir(podUID)); err != nil {
		return "", fmt.Errorf("pod %s: %w", podUID, ErrPodNotFound)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("pod %s container %s: %w", podUID, name, ErrContainerNotFound)
	}
	var instances []int
	for _, e := range entries {
		if n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".log")); err == nil && strings.HasSuffix(e.Name(), ".log") {
			instances = append(instances, n)
		}
	}
	sort.Ints(instances)
	i := len(instances) - 1
	if previous {
		i--
	}
	if i < 0 {
		return "", fmt.Errorf("pod %s container %s (previous=%v): %w", podUID, name, previous, ErrNoLog)
	}
	if previous && instances[i] != instances[i+1]-1 {
		return "", fmt.Errorf("pod %s container %s (previous): %w", podUID, name, ErrNoLog)
	}
	return filepath.Join(dir, strconv.Itoa(instances[i])+".log"), nil
}

// PodNetns implements Runtime.
func (a *Agent) PodNetns(podUID types.UID) (string, error) {
	run, ok := a.runByUID(podUID)
	if !ok {
		return "", fmt.Errorf("pod %s: %w", podUID, ErrPodNotFound)
	}
	if run.rec.Netns == "" {
		if a.cfg.NodeNetnsPath != "" {
			return a.cfg.NodeNetnsPath, nil
		}
		return fmt.Sprintf("/proc/%d/ns/net", os.Getpid()), nil
	}
	return filepath.Join(a.cfg.NetnsDir, run.rec.Netns), nil
}

// Exec implements Runtime.
func (a *Agent) Exec(ctx context.Context, podUID types.UID, name string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan TerminalSize) error {
	run, ok := a.runByUID(podUID)
	if !ok {
		return fmt.Errorf("pod %s: %w", podUID, ErrPodNotFound)
	}
	if !run.hasContainer(name) {
		return fmt.Errorf("pod %s container %s: %w", podUID, name, ErrContainerNotFound)
	}
	return a.execIn(ctx, run, run.containers[name], cmd, stdin, stdout, stderr, tty, resize)
}

// execIn runs cmd in container ct of run (nil: a built-in workload container, run in the
// pod's network namespace as root).
func (a *Agent) execIn(ctx context.Context, run *podRun, ct *container, argv []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan TerminalSize) error {
	if len(argv) == 0 {
		return errors.New("exec: no command")
	}
	var spec helperSpec
	if ct != nil {
		pid := ct.pid()
		if pid == 0 {
			return fmt.Errorf("container %s: %w", ct.name, ErrNotRunning)
		}
		spec = ct.spec
		spec.Argv = argv
		spec.NewMountNS, spec.RemountSys, spec.Mounts = false, false, nil
		spec.NetnsPath = fmt.Sprintf("/proc/%d/ns/net", pid)
		spec.MountNSPath = fmt.Sprintf("/proc/%d/ns/mnt", pid)
	} else {
		netnsPath, err := a.PodNetns(run.rec.UID)
		if err != nil {
			return err
		}
		spec = helperSpec{Argv: argv, Env: []string{"PATH=" + defaultPath, "HOME=/root"}, NetnsPath: netnsPath, Caps: DefaultCapabilities}
	}
	cmd := helperCommand(a.cfg.HelperPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !tty, Setsid: tty, Setctty: tty}
	var copies sync.WaitGroup
	var closeAfterStart []io.Closer
	var ptm *os.File
	if tty {
		master, slave, err := openPTY()
		if err != nil {
			return fmt.Errorf("exec: pty: %w", err)
		}
		ptm = master
		defer master.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		closeAfterStart = append(closeAfterStart, slave)
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
		// A stdin that never ends must not hold Wait once the command has exited.
		cmd.WaitDelay = time.Second
	}
	if err := startHelper(cmd, spec); err != nil {
		for _, c := range closeAfterStart {
			c.Close()
		}
		return fmt.Errorf("exec: %w", err)
	}
	for _, c := range closeAfterStart {
		c.Close()
	}
	if tty {
		if stdin != nil {
			go func() { _, _ = io.Copy(ptm, stdin) }()
		}
		if stdout != nil {
			copies.Go(func() { _, _ = io.Copy(stdout, ptm) })
		}
		if resize != nil {
			go func() {
				for sz := range resize {
					_ = unix.IoctlSetWinsize(int(ptm.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
				}
			}()
		}
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		err = <-waited
		if err == nil {
			err = ctx.Err()
		}
	}
	if tty {
		// The slave side is closed by now: reading the master ends with EIO.
		copies.Wait()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return &ExitError{Code: 128 + int(ws.Signal())}
		}
		return &ExitError{Code: ws.ExitStatus()}
	}
	if err == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// openPTY opens a new pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}

// ContainerRunning reports whether a container's current instance runs (for a built-in
// workload container: whether its pod runs), so that `logs -f` ends when it exits.
func (a *Agent) ContainerRunning(podUID types.UID, name string) bool {
	run, ok := a.runByUID(podUID)
	if !ok || !run.hasContainer(name) {
		return false
	}
	if ct := run.containers[name]; ct != nil {
		return ct.pid() != 0
	}
	return true
}
