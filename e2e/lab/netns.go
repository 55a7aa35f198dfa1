package lab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/loadstone-lb/loadstone/internal/nsthread"
)

// Dialer dials from inside a network namespace.
type Dialer struct {
	// Netns is the namespace the sockets are created in.
	Netns string
	// Timeout bounds the connect; default 5 s.
	Timeout time.Duration
	// LocalAddr, if set, is the source address.
	LocalAddr net.Addr
}

// DialContext connects from inside d.Netns.
func (d Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	var conn net.Conn
	err := nsthread.DoNamed(d.Netns, func() error {
		var err error
		nd := net.Dialer{Timeout: timeout, LocalAddr: d.LocalAddr}
		conn, err = nd.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// ServeAPIProxy relays TCP connections accepted on listen (in the current namespace) to
// target, dialled from inside namespace ns, until ctx ends or namespace ns goes away (so a
// relay whose lab was removed never lingers). TLS passes through untouched: the API
// server's certificate names 127.0.0.1.
func ServeAPIProxy(ctx context.Context, listen, ns, target string, log *slog.Logger) error {
	id, err := netnsID(ns)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				ln.Close()
				return
			case <-t.C:
				if now, err := netnsID(ns); err != nil || now != id {
					log.Info("lab namespace gone: relay exits", "netns", ns)
					cancel()
				}
			}
		}
	}()
	d := Dialer{Netns: ns}
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			u, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				log.Warn("relay dial failed", "target", target, "err", err)
				return
			}
			defer u.Close()
			var wg sync.WaitGroup
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			}
			go pipe(u, c)
			go pipe(c, u)
			wg.Wait()
		}()
	}
}

// netnsID identifies the namespace pinned under a name (device and inode of the pin).
func netnsID(ns string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join("/run/netns", ns), &st); err != nil {
		return "", fmt.Errorf("netns %s: %w", ns, err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}
