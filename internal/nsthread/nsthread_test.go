package nsthread

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// A function run in another namespace sees that namespace, gets its error back, and
// the caller's thread is where it was.
func TestDoEntersAndRestores(t *testing.T) {
	if testing.Short() {
		t.Skip("kernel test: not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root")
	}
	name := fmt.Sprintf("lsnst-test-%d", os.Getpid())
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	// NewNamed moves this thread into the new namespace; move it back.
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	runtime.UnlockOSThread()
	t.Cleanup(func() {
		ns.Close()
		orig.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	sentinel := errors.New("from inside")
	err = DoNamed(name, func() error {
		cur, err := netns.Get()
		if err != nil {
			return err
		}
		defer cur.Close()
		if !cur.Equal(ns) {
			return fmt.Errorf("inside: in %s, want %s", cur, ns)
		}
		return sentinel
	})
	if !errors.Is(err, sentinel) {
		t.Fatalf("DoNamed returned %v, want the function's error", err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if !cur.Equal(orig) {
		t.Errorf("caller's thread is in %s, want %s", cur, orig)
	}
	if err := DoNamed(name+"-missing", func() error { return nil }); err == nil {
		t.Error("DoNamed on a missing namespace: no error")
	}
}
