package lab

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// Cleanup removes a killed run's leftovers: recorded processes that are still the same
// process, any process inside an "ls-" namespace, and the namespaces; a recorded PID that
// now belongs to another process is left alone. Needs root; it removes every "ls-"
// namespace, so it replaces a running lab like any e2e test.
func TestCleanupRemovesLeftovers(t *testing.T) {
	if testing.Short() {
		t.Skip("kernel test: needs root and removes the lab's namespaces; not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("kernel test needs root (run with -short to skip)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const ns = "ls-zz-leftover"
	if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = run(ctx, "ip", "netns", "del", ns) })

	start := func(argv ...string) *exec.Cmd {
		cmd := exec.Command(argv[0], argv[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	inside := start("ip", "netns", "exec", ns, sleep, "600") // unrecorded, inside a lab netns
	recorded := start(sleep, "601")                          // recorded, root namespace
	stranger := start(sleep, "602")                          // recorded with a wrong start time
	time.Sleep(200 * time.Millisecond)

	proc := func(c *exec.Cmd) Proc {
		st, _, err := procStartTime(c.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return Proc{Name: "p", PID: c.Process.Pid, StartTime: st, Argv: []string{sleep}}
	}
	rec, insideP, strangerP := proc(recorded), proc(inside), proc(stranger)
	str := strangerP
	str.StartTime++
	st := &stateStore{path: dir + "/" + stateFile}
	if err := st.update(func(s *State) { s.Procs = []Proc{rec, str}; s.Netns = []string{ns} }); err != nil {
		t.Fatal(err)
	}

	if err := Cleanup(ctx, dir, nil); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if rec.Alive() {
		t.Error("recorded process survived")
	}
	if insideP.Argv = []string{sleep}; insideP.Alive() {
		t.Error("process inside the lab namespace survived")
	}
	if !strangerP.Alive() {
		t.Error("a process whose start time does not match the record was killed")
	}
	names, err := labNetns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, ns) {
		t.Errorf("namespace %s survived", ns)
	}
}
