package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HelperEnv is the environment variable that makes the agent's binary act as the
// container start helper (see RunHelperIfRequested).
const HelperEnv = "LOADSTONE_NODEAGENT_HELPER"

// helperSpec is what the helper does before it replaces itself with a container's
// program. The agent writes it as JSON on the helper's fd 3.
type helperSpec struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir,omitempty"`
	// NetnsPath is the network namespace to join (empty: keep the agent's).
	NetnsPath string `json:"netns,omitempty"`
	// MountNSPath is a mount namespace to join (exec into a running container).
	MountNSPath string `json:"mountns,omitempty"`
	// NewMountNS makes a private mount namespace (a slave of the agent's) for Mounts.
	NewMountNS bool `json:"newMountNS,omitempty"`
	// RemountSys mounts a fresh sysfs on /sys, showing NetnsPath's interfaces.
	RemountSys bool          `json:"remountSys,omitempty"`
	Mounts     []helperMount `json:"mounts,omitempty"`
	UID        uint32        `json:"uid"`
	GID        uint32        `json:"gid"`
	Groups     []uint32      `json:"groups,omitempty"`
	// Caps is the bounding set (capability names); for UID 0 also the effective and
	// permitted set after exec.
	Caps       []string `json:"caps"`
	NoNewPrivs bool     `json:"noNewPrivs,omitempty"`
}

// helperMount is a bind mount of Source (a file or directory) on Target.
type helperMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// RunHelperIfRequested turns the process into the container start helper when HelperEnv
// is set, and never returns then; otherwise it returns at once. The node agent's main (and
// the tests' TestMain) call it first thing.
//
// The helper is how the agent starts a program in a container's namespaces: Go's os/exec
// cannot join a namespace before exec, so the agent runs its own binary again with the
// container's spec on fd 3. On one locked OS thread, the helper joins the pod's network
// namespace (setns), unshares a mount namespace and bind-mounts the container's volumes,
// service-account token and resolv.conf, drops the capability bounding set to the
// container's set, sets groups, gid and uid (directly on the thread), and execve's the
// program from that thread: the new program has that thread's namespaces and credentials.
// If anything fails before execve, it writes why on fd 4 (which execve closes otherwise)
// and exits 127.
func RunHelperIfRequested() {
	if os.Getenv(HelperEnv) != "1" {
		return
	}
	runtime.LockOSThread()
	status := os.NewFile(4, "status")
	unix.CloseOnExec(4)
	err := runHelper(os.NewFile(3, "spec"))
	msg := err.Error()
	_, _ = status.WriteString(msg)
	fmt.Fprintln(os.Stderr, "container start failed:", msg)
	os.Exit(127)
}

func runHelper(specFile *os.File) error {
	b, err := io.ReadAll(specFile)
	specFile.Close()
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var spec helperSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("parse spec: %w", err)
	}
	if len(spec.Argv) == 0 {
		return errors.New("no command")
	}
	mntFD := -1
	if spec.MountNSPath != "" {
		// Open before leaving the agent's network namespace (/proc is the same anyway).
		if mntFD, err = unix.Open(spec.MountNSPath, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("open mount namespace: %w", err)
		}
	}
	if spec.NetnsPath != "" {
		fd, err := unix.Open(spec.NetnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open netns: %w", err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join netns %s: %w", spec.NetnsPath, err)
		}
		unix.Close(fd)
	}
	if mntFD >= 0 {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare CLONE_FS: %w", err)
		}
		if err := unix.Setns(mntFD, unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("join mount namespace: %w", err)
		}
		unix.Close(mntFD)
	}
	if spec.NewMountNS {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare mount namespace: %w", err)
		}
		// Nothing mounted here may reach the host.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			return fmt.Errorf("make / a slave mount: %w", err)
		}
		if spec.RemountSys {
			if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount /sys: %w", err)
			}
			if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				return fmt.Errorf("mount sysfs: %w", err)
			}
		}
		mounts := slices.Clone(spec.Mounts)
		// Parents before children.
		slices.SortStableFunc(mounts, func(a, b helperMount) int {
			return strings.Count(filepath.Clean(a.Target), "/") - strings.Count(filepath.Clean(b.Target), "/")
		})
		for _, m := range mounts {
			if err := bindMount(m); err != nil {
				return err
			}
		}
	}
	if spec.Dir != "" {
		if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
		if err := unix.Chdir(spec.Dir); err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
	}
	path, err := lookPath(spec.Argv[0], spec.Env)
	if err != nil {
		return err
	}
	if err := setCredentials(spec); err != nil {
		return err
	}
	err = unix.Exec(path, spec.Argv, spec.Env)
	return fmt.Errorf("exec %s: %w", path, err)
}

// bindMount mounts m, creating the mount point (an empty directory or file) if needed.
func bindMount(m helperMount) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("mount source: %w", err)
	}
	if _, err := os.Stat(m.Target); errors.Is(err, os.ErrNotExist) {
		if st.IsDir() {
			err = os.MkdirAll(m.Target, 0o755)
		} else {
			if err = os.MkdirAll(filepath.Dir(m.Target), 0o755); err == nil {
				var f *os.File
				if f, err = os.OpenFile(m.Target, os.O_CREATE|os.O_RDONLY, 0o644); err == nil {
					f.Close()
				}
			}
		}
		if err != nil {
			return fmt.Errorf("mount point %s: %w", m.Target, err)
		}
	}
	if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", m.Target, err)
		}
	}
	return nil
}

// defaultPath is the PATH of a container whose environment sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds a command name in the PATH of env.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in $PATH %s: %w", name, path, exec.ErrNotFound)
}

// setCredentials sets the current thread's capability bounding set, groups, gid and uid
// (raw syscalls: only this thread, the one that execs, matters).
func setCredentials(spec helperSpec) error {
	keep := map[int]bool{}
	for _, c := range spec.Caps {
		n, ok := capNumber(c)
		if !ok {
			return fmt.Errorf("unknown capability %q", c)
		}
		keep[n] = true
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for n := 0; ; n++ {
		if keep[n] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the kernel's last capability
			}
			return fmt.Errorf("drop capability %d from the bounding set: %w", n, err)
		}
	}
	groups := spec.Groups
	if len(groups) == 0 {
		groups = []uint32{spec.GID}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(spec.GID), uintptr(spec.GID), uintptr(spec.GID)); e != 0 {
		return fmt.Errorf("setresgid %d: %w", spec.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(spec.UID), uintptr(spec.UID), uintptr(spec.UID)); e != 0 {
		return fmt.Errorf("setresuid %d: %w", spec.UID, e)
	}
	if spec.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	return nil
}

// helperCommand prepares the helper process for spec: the agent's (or test's) own binary
// with HelperEnv set. startHelper starts it.
func helperCommand(helperPath string) *exec.Cmd {
	cmd := exec.Command(helperPath)
	cmd.Args = []string{"nodeagent-container-helper"}
	cmd.Env = []string{HelperEnv + "=1"}
	return cmd
}

// startHelper starts cmd (from helperCommand) with spec and waits until the program has
// been exec'd (nil) or the helper failed before (the error says why).
func startHelper(cmd *exec.Cmd, spec helperSpec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return err
	}
	cmd.ExtraFiles = []*os.File{specR, statusW}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	err = onForkThread(cmd.Start)
	specR.Close()
	statusW.Close()
	if err != nil {
		specW.Close()
		statusR.Close()
		return fmt.Errorf("start helper: %w", err)
	}
	go func() {
		_, _ = specW.Write(b)
		specW.Close()
	}()
	msg, _ := io.ReadAll(statusR)
	statusR.Close()
	if len(msg) > 0 {
		_ = cmd.Wait()
		return errors.New(string(msg))
	}
	return nil
}

// forkRequests feed the fork thread.
var (
	forkOnce     sync.Once
	forkRequests chan func()
)

// onForkThread runs fn (which starts a process) on one OS thread that lives as long as the
// agent: a child's parent-death signal fires when the thread that forked it ends, and the
// agent ends the threads it uses to enter namespaces.
func onForkThread(fn func() error) error {
	forkOnce.Do(func() {
		forkRequests = make(chan func())
		go func() {
			runtime.LockOSThread()
			for f := range forkRequests {
				f()
			}
		}()
	})
	done := make(chan error, 1)
	forkRequests <- func() { done <- fn() }
	return <-done
}
