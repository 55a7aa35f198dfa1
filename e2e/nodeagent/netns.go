package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/loadstone-lb/loadstone/internal/nsthread"
)

// DefaultNetnsDir is where iproute2 pins named network namespaces.
const DefaultNetnsDir = "/run/netns"

// namespaces creates, opens and deletes named network namespaces the way `ip netns add`
// does (a bind mount of the namespace on dir/name), so `ip netns exec NAME` works on them.
//
// The agent usually runs under `ip netns exec NODE`, which puts it in a private mount
// namespace that is a slave of the host's: a bind mount made there would not be seen by the
// host. So when mountNS is set, the bind mount is made from a thread that first joins
// mountNS (the host's mount namespace). A Go process may not join a mount namespace while
// its threads share their filesystem state, so that thread first unshares CLONE_FS. Such a
// thread is tainted: it stays locked and is ended by the Go runtime when its goroutine
// returns, so no other goroutine ever runs on it.
type namespaces struct {
	dir     string
	mountNS *os.File // nil: the process's own mount namespace
}

// onTaintedThread runs fn on a fresh OS thread that is thrown away afterwards.
func onTaintedThread[T any](fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread's namespaces may have changed for good.
		v, err := fn()
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

// enterMountNS prepares the current (tainted) thread to mount in n.mountNS.
func (n namespaces) enterMountNS() error {
	if n.mountNS == nil {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare CLONE_FS: %w", err)
	}
	if err := unix.Setns(int(n.mountNS.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join mount namespace: %w", err)
	}
	return nil
}

// ensureSharedDir makes dir a shared mount point, as iproute2 does, so namespaces pinned
// there later show up in mount namespaces that were copied from this one.
func ensureSharedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", dir, err)
		}
		err = unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s shared: %w", dir, err)
	}
	return nil
}

// isNetns reports whether f is a network namespace file (and not, say, an empty file left
// where a bind mount used to be).
func isNetns(fd int) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(fd, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// Open returns a handle on the named namespace, or an error wrapping os.ErrNotExist.
func (n namespaces) Open(name string) (netns.NsHandle, error) {
	path := filepath.Join(n.dir, name)
	h, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("open netns %s: %w", name, err)
	}
	if !isNetns(int(h)) {
		h.Close()
		return netns.None(), fmt.Errorf("open netns %s: %s is not a network namespace: %w", name, path, os.ErrNotExist)
	}
	return h, nil
}

// Ensure opens the named namespace, creating it first if needed.
func (n namespaces) Ensure(name string) (netns.NsHandle, error) {
	if h, err := n.Open(name); err == nil {
		return h, nil
	}
	return onTaintedThread(func() (netns.NsHandle, error) {
		if err := n.enterMountNS(); err != nil {
			return netns.None(), err
		}
		if err := ensureSharedDir(n.dir); err != nil {
			return netns.None(), err
		}
		path := filepath.Join(n.dir, name)
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
		if err != nil {
			return netns.None(), fmt.Errorf("create %s: %w", path, err)
		}
		f.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return netns.None(), fmt.Errorf("unshare CLONE_NEWNET: %w", err)
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			os.Remove(path)
			return netns.None(), fmt.Errorf("bind mount netns on %s: %w", path, err)
		}
		h, err := netns.GetFromPath("/proc/thread-self/ns/net")
		if err != nil {
			return netns.None(), fmt.Errorf("open new netns: %w", err)
		}
		return h, nil
	})
}

// Delete unpins the named namespace; it is destroyed once nothing (an open handle, a
// socket) refers to it any more. Deleting a missing namespace is not an error.
func (n namespaces) Delete(name string) error {
	_, err := onTaintedThread(func() (struct{}, error) {
		if err := n.enterMountNS(); err != nil {
			return struct{}{}, err
		}
		path := filepath.Join(n.dir, name)
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return struct{}{}, fmt.Errorf("unmount %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return struct{}{}, fmt.Errorf("remove %s: %w", path, err)
		}
		return struct{}{}, nil
	})
	return err
}

// writeSysctls writes "net/ipv4/ip_forward"-style keys under /proc/sys inside ns.
func writeSysctls(ns netns.NsHandle, kv [][2]string) error {
	return nsthread.Do(ns, func() error {
		var errs []error
		for _, e := range kv {
			path := filepath.Join("/proc/sys", e[0])
			if err := os.WriteFile(path, []byte(e[1]), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("sysctl %s=%s: %w", e[0], e[1], err))
			}
		}
		return errors.Join(errs...)
	})
}
