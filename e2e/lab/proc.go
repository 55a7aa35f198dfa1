package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run runs a short command and returns its output; the error carries the output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// inNetns prefixes argv so that it runs inside netns ns ("" = root namespace).
func inNetns(ns string, argv ...string) []string {
	if ns == "" {
		return argv
	}
	return append([]string{"ip", "netns", "exec", ns}, argv...)
}

// procStartTime reads field 22 of /proc/PID/stat and the state letter.
func procStartTime(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0][0], err
}

// procCmdline returns the argv of a live process.
func procCmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// Alive reports whether the recorded process still runs (and is still the same process:
// same start time, its command line still names the recorded binary).
func (p Proc) Alive() bool {
	if p.PID <= 1 {
		return false
	}
	start, state, err := procStartTime(p.PID)
	if err != nil || start != p.StartTime || state == 'Z' || state == 'X' {
		return false
	}
	argv, err := procCmdline(p.PID)
	if err != nil || len(p.Argv) == 0 {
		return false
	}
	// While execve runs, the command line reads empty; the start time already matched.
	if len(argv) == 1 && argv[0] == "" {
		return true
	}
	// Between fork and exec the command line is still "ip netns exec NS BIN ...".
	for _, a := range argv {
		if a == p.Argv[0] {
			return true
		}
	}
	return false
}

// stopProc sends SIGTERM to a recorded process, waits up to grace for it to exit, then
// sends SIGKILL. A process that is gone, or whose PID now belongs to someone else, is left
// alone. done, if not nil, is closed when the process has been reaped by us.
func stopProc(p Proc, grace time.Duration, done <-chan struct{}) error {
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGTERM %s (pid %d): %w", p.Name, p.PID, err)
	}
	if waitGone(p, grace, done) {
		return nil
	}
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGKILL %s (pid %d): %w", p.Name, p.PID, err)
	}
	if !waitGone(p, 5*time.Second, done) {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
	}
	return nil
}

// waitGone waits until the process exits (or is a zombie), up to d.
func waitGone(p Proc, d time.Duration, done <-chan struct{}) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if done != nil {
			select {
			case <-done:
				return true
			case <-time.After(10 * time.Millisecond):
			}
		} else {
			time.Sleep(10 * time.Millisecond)
		}
		if !p.Alive() {
			return true
		}
	}
	return !p.Alive()
}

// killPID kills a process found inside one of the lab's namespaces: SIGTERM, then SIGKILL.
func killPID(pid int, grace time.Duration) {
	start, _, err := procStartTime(pid)
	if err != nil {
		return
	}
	p := Proc{Name: "leftover", PID: pid, StartTime: start}
	if argv, err := procCmdline(pid); err == nil && len(argv) > 0 {
		p.Argv = argv[:1]
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitGone(p, grace, nil) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	waitGone(p, 2*time.Second, nil)
}
