package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Termination is how a container instance ended.
type Termination struct {
	ExitCode   int32
	Signal     int32
	Reason     string // Completed, Error, StartError, OOMKilled is never reported
	Message    string
	StartedAt  time.Time
	FinishedAt time.Time
}

// ContainerState is what the agent knows about a container that runs a program: the
// input of its ContainerStatus.
type ContainerState struct {
	// Instance numbers the container's instances from 0; it names the log file.
	Instance     int
	RestartCount int32
	// RunningSince is set while an instance runs.
	RunningSince time.Time
	// Started is false until the startup probe (if any) has passed.
	Started bool
	// WaitingReason and WaitingMessage are set while no instance runs and one will
	// (ContainerCreating, CrashLoopBackOff, CreateContainerConfigError, ...).
	WaitingReason, WaitingMessage string
	// Terminated is the last instance's end while no instance runs.
	Terminated *Termination
	// LastTerminated is the end of the instance before the current one.
	LastTerminated *Termination
	// Done: no instance will run again (the restart policy says so, or the pod is being
	// killed).
	Done bool
}

// Backoff of restarts: the first restart waits Initial, each next one twice as long up to
// Max; an instance that ran for Reset resets it.
type Backoff struct {
	Initial, Max, Reset time.Duration
}

// DefaultBackoff is the kubelet's restart backoff.
var DefaultBackoff = Backoff{Initial: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}

// Next returns the wait before the next restart, given the previous wait (0 before the
// first restart) and how long the instance that just ended ran.
func (b Backoff) Next(prev, ran time.Duration) time.Duration {
	if prev == 0 || ran >= b.Reset {
		return b.Initial
	}
	return min(prev*2, b.Max)
}

// ShouldRestart applies a restart policy to an instance's exit code.
func ShouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

// container runs one program container of a pod: instances of it, restarted by the
// pod's restart policy with backoff, each in its own mount namespace.
type container struct {
	name    string
	podKey  string
	helper  string
	spec    helperSpec // per instance: the same
	policy  corev1.RestartPolicy
	grace   time.Duration
	backoff Backoff
	logDir  string
	// prepare computes spec before the first instance; on error the container waits
	// with the reason and message, and tries again.
	prepare  func(ctx context.Context) (helperSpec, string, error)
	prepared bool
	log      *slog.Logger
	changed  func()
	// onInstance is called with a context that ends with the instance (probes).
	onInstance func(ctx context.Context, pid int)

	mu    sync.Mutex
	state ContainerState
	cmd   *exec.Cmd
	// kill asks the loop to end the current instance (liveness failure) and stop
	// restarting if final.
	stopping bool
	done     chan struct{}
	cancel   context.CancelFunc
}

// logPath is the log file of instance n.
func (c *container) logPath(n int) string {
	return filepath.Join(c.logDir, strconv.Itoa(n)+".log")
}

// State returns a copy of the container's state.
func (c *container) State() ContainerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state
	return st
}

func (c *container) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.cmd.Process == nil || c.state.RunningSince.IsZero() {
		return 0
	}
	return c.cmd.Process.Pid
}

func (c *container) setState(f func(*ContainerState)) {
	c.mu.Lock()
	f(&c.state)
	c.mu.Unlock()
	c.changed()
}

// start runs the container's loop in the background.
func (c *container) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done = make(chan struct{})
	c.state = ContainerState{Instance: -1, WaitingReason: "ContainerCreating"}
	go func() {
		defer close(c.done)
		c.loop(ctx)
	}()
}

func (c *container) loop(ctx context.Context) {
	var wait time.Duration
	for {
		if !c.prepared && !c.prepareSpec(ctx) {
			c.setState(func(s *ContainerState) { s.Done = true })
			return
		}
		term := c.runInstance(ctx)
		if ctx.Err() != nil || !ShouldRestart(c.policy, term.ExitCode) {
			c.setState(func(s *ContainerState) { s.Done = true })
			return
		}
		wait = c.backoff.Next(wait, term.FinishedAt.Sub(term.StartedAt))
		c.setState(func(s *ContainerState) {
			s.WaitingReason = "CrashLoopBackOff"
			s.WaitingMessage = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", wait, c.name, c.podKey)
		})
		select {
		case <-ctx.Done():
			c.setState(func(s *ContainerState) { s.Done = true })
			return
		case <-time.After(wait):
		}
	}
}

// prepareSpec calls prepare until it succeeds (true) or ctx ends (false), waiting 1 s,
// then twice as long each time up to 30 s, between tries.
func (c *container) prepareSpec(ctx context.Context) bool {
	wait := time.Second
	for {
		if err := os.MkdirAll(c.logDir, 0o755); err != nil {
			c.log.Warn("container log directory", "container", c.name, "err", err)
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		spec, reason, err := c.prepare(pctx)
		cancel()
		if err == nil {
			c.spec, c.prepared = spec, true
			return true
		}
		c.log.Info("container not created", "container", c.name, "reason", reason, "err", err)
		c.setState(func(s *ContainerState) { s.WaitingReason, s.WaitingMessage = reason, err.Error() })
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// runInstance starts one instance and waits for it to end.
func (c *container) runInstance(ctx context.Context) Termination {
	c.mu.Lock()
	n := c.state.Instance + 1
	c.mu.Unlock()
	// Keep the current and the previous instance's logs.
	_ = os.Remove(c.logPath(n - 2))
	started := time.Now()
	logf, err := os.OpenFile(c.logPath(n), os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	var cmd *exec.Cmd
	if err == nil {
		cmd = helperCommand(c.helper)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = startHelper(cmd, c.spec)
		logf.Close()
	}
	if err != nil {
		term := Termination{ExitCode: 128, Reason: "StartError", Message: err.Error(), StartedAt: started, FinishedAt: time.Now()}
		c.log.Warn("container start failed", "container", c.name, "err", err)
		c.setState(func(s *ContainerState) {
			s.Instance = n
			if n > 0 {
				s.RestartCount++
				s.LastTerminated = s.Terminated
			}
			s.RunningSince = time.Time{}
			s.Terminated = &term
			s.WaitingReason, s.WaitingMessage = "RunContainerError", err.Error()
		})
		return term
	}
	c.log.Info("container started", "container", c.name, "pid", cmd.Process.Pid, "instance", n, "argv", c.spec.Argv)
	c.mu.Lock()
	c.cmd = cmd
	if n > 0 {
		c.state.RestartCount++
		c.state.LastTerminated = c.state.Terminated
	}
	c.state.Instance = n
	c.state.RunningSince = started
	c.state.Terminated = nil
	c.state.WaitingReason, c.state.WaitingMessage = "", ""
	c.state.Started = false
	stopping := c.stopping
	c.mu.Unlock()
	if stopping {
		// Killed while starting.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	c.changed()
	instCtx, endInstance := context.WithCancel(ctx)
	if c.onInstance != nil {
		c.onInstance(instCtx, cmd.Process.Pid)
	}
	werr := cmd.Wait()
	endInstance()
	term := Termination{StartedAt: started, FinishedAt: time.Now(), Reason: "Completed"}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			term.Signal = int32(ws.Signal())
			term.ExitCode = 128 + int32(ws.Signal())
		default:
			term.ExitCode = int32(ws.ExitStatus())
		}
	} else if werr != nil {
		term.ExitCode = 128
		term.Message = werr.Error()
	}
	if term.ExitCode != 0 {
		term.Reason = "Error"
	}
	// Whatever the program left in its process group goes with it, as with a container's
	// cgroup.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	c.log.Info("container exited", "container", c.name, "instance", n, "exitCode", term.ExitCode)
	c.setState(func(s *ContainerState) {
		s.RunningSince = time.Time{}
		s.Started = false
		s.Terminated = &term
	})
	return term
}

// terminate sends SIGTERM to the running instance and SIGKILL to its process group after
// grace, unless it has exited by then.
func (c *container) terminate(grace time.Duration) {
	c.mu.Lock()
	cmd := c.cmd
	running := !c.state.RunningSince.IsZero()
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil || !running {
		return
	}
	pid := cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	go func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				return
			case <-time.After(100 * time.Millisecond):
				c.mu.Lock()
				same := c.cmd == cmd && !c.state.RunningSince.IsZero()
				c.mu.Unlock()
				if !same {
					return
				}
			}
		}
	}()
}

// stop ends the container for good: no more restarts; the running instance gets SIGTERM
// and, after grace, SIGKILL. It does not wait.
func (c *container) stop(grace time.Duration) {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.cancel()
	c.terminate(grace)
}

// kill stops the container at once and waits for its loop to end.
func (c *container) kill() {
	c.stop(0)
	c.mu.Lock()
	cmd := c.cmd
	c.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	<-c.done
}

// exited reports whether the container's loop has ended (no instance runs or will).
func (c *container) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// containerStatus builds a program container's status from its state.
func containerStatus(c corev1.Container, podUID string, st ContainerState, ready bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "lab://" + c.Image, RestartCount: st.RestartCount}
	started := st.Started && !st.RunningSince.IsZero()
	cs.Started = &started
	if st.Instance >= 0 {
		cs.ContainerID = "lab://" + podUID + "/" + c.Name + "/" + strconv.Itoa(st.Instance)
	}
	term := func(t *Termination) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{
			ExitCode: t.ExitCode, Signal: t.Signal, Reason: t.Reason, Message: t.Message,
			StartedAt:   metav1Time(t.StartedAt),
			FinishedAt:  metav1Time(t.FinishedAt),
			ContainerID: cs.ContainerID,
		}
	}
	switch {
	case !st.RunningSince.IsZero():
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1Time(st.RunningSince)}
		cs.Ready = ready
	case st.WaitingReason != "" && !st.Done:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: st.WaitingReason, Message: st.WaitingMessage}
	case st.Terminated != nil:
		cs.State.Terminated = term(st.Terminated)
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	last := st.LastTerminated
	if cs.State.Terminated == nil && cs.State.Running == nil && st.Terminated != nil {
		// Waiting to restart: the instance that ended is the last state.
		last = st.Terminated
	}
	if last != nil {
		cs.LastTerminationState.Terminated = term(last)
	}
	return cs
}
