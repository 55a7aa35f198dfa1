package bgp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sessionsTimeout bounds the gobgp queries of one Sessions call.
const sessionsTimeout = 10 * time.Second

// Sessions reports every configured peer's session, sorted by peer name, with the paths
// gobgp's Adj-RIB-Out holds for it (what the export policy lets out, with the attributes
// and next hop the session sends).
func (s *Server) Sessions() []Session {
	ctx, cancel := context.WithTimeout(context.Background(), sessionsTimeout)
	defer cancel()
	s.stateMu.Lock()
	names := make(map[string]string, len(s.names))
	for k, v := range s.names {
		names[k] = v
	}
	s.stateMu.Unlock()

	var peers []*api.Peer
	err := s.bgp.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) { peers = append(peers, p) })
	if err != nil {
		s.log.Warn("list BGP peers", "err", err)
	}
	byAddr := map[string]*api.Peer{}
	for _, p := range peers {
		byAddr[p.GetConf().GetNeighborAddress()] = p
	}
	out := make([]Session, 0, len(names))
	for addr, name := range names {
		a, _ := netip.ParseAddr(addr)
		ss := Session{Peer: name, Address: a, State: StateUnknown, LastError: s.logs.lastError(addr)}
		if p, ok := byAddr[addr]; ok {
			ss.State = stateName(p.GetState().GetSessionState())
			if ss.State == StateEstablished {
				ts := p.GetTimers().GetState()
				if up := ts.GetUptime(); up != nil {
					ss.EstablishedSince = up.AsTime()
				}
				ss.HoldTime = time.Duration(ts.GetNegotiatedHoldTime()) * time.Second
				ss.KeepaliveTime = time.Duration(ts.GetKeepaliveInterval()) * time.Second
				ss.Advertised = s.adjOut(ctx, addr, familyOf(a))
			}
		}
		out = append(out, ss)
	}
	slices.SortFunc(out, func(x, y Session) int { return strings.Compare(x.Peer, y.Peer) })
	return out
}

// adjOut reads the peer's Adj-RIB-Out back from gobgp.
func (s *Server) adjOut(ctx context.Context, addr string, fam family) []Advertised {
	var out []Advertised
	err := s.bgp.ListPath(ctx, &api.ListPathRequest{
		TableType: api.TableType_ADJ_OUT, Name: addr, Family: fam.api(),
	}, func(d *api.Destination) {
		for _, p := range d.Paths {
			if p.IsWithdraw {
				continue
			}
			a, err := parseAdvertised(p)
			if err != nil {
				s.log.Warn("parse an advertised path", "address", addr, "err", err)
				continue
			}
			out = append(out, a)
		}
	})
	if err != nil {
		s.log.Warn("list Adj-RIB-Out", "address", addr, "err", err)
	}
	slices.SortFunc(out, func(x, y Advertised) int { return comparePrefix(x.Prefix, y.Prefix) })
	return out
}

// Close shuts BGP down before the process exits; later calls return nil.
//
//  1. The peer event watcher is cancelled and OnChange is no longer called.
//  2. Peers with graceful restart: their TCP connection is aborted (SOCK_DESTROY, which
//     sends a RST) and the peer is disabled so gobgp does not reconnect. No NOTIFICATION
//     and no withdrawal reaches the router, which keeps our routes as stale for the
//     Restart Time we advertised (RFC 4724 §4.2) while the speaker restarts.
//  3. Every path is withdrawn from the global RIB: the remaining (non-graceful-restart)
//     peers receive withdrawals.
//  4. gobgp is stopped: it sends those peers a Cease NOTIFICATION and closes.
//
// If a graceful-restart session cannot be aborted (SOCK_DESTROY fails), steps 3 and 4
// would reach its router too: then only the other peers are shut (Cease), gobgp is left
// running for the process exit to close that connection silently, and Close returns the
// error.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stateMu.Lock()
	s.stopped = true
	for k := range s.backoff {
		s.resetBackoffLocked(k)
	}
	s.stateMu.Unlock()
	if s.watchCancel != nil {
		s.watchCancel()
	}
	if !s.running {
		return nil
	}
	var errs []error
	kept := false // a graceful-restart session this process could not abort
	for _, k := range sortedKeys(s.peers) {
		p := s.peers[k]
		if !p.GracefulRestart {
			continue
		}
		n, err := abortSessions(p.Address.Unmap(), int(portOr179(p.Port)), int(s.listenPort))
		if err != nil {
			errs = append(errs, fmt.Errorf("abort the session of peer %s without NOTIFICATION: %w", p.Name, err))
			kept = true
			continue
		}
		if err := s.bgp.DisablePeer(ctx, &api.DisablePeerRequest{Address: k, Communication: "speaker shutting down"}); err != nil {
			errs = append(errs, fmt.Errorf("disable peer %s: %w", p.Name, err))
		}
		s.log.Info("BGP session closed for graceful restart", "peer", p.Name, "address", k, "connections", n)
	}
	if kept {
		// Withdrawing or stopping gobgp would reach that router (withdrawals, a Cease).
		// Shut only the other sessions (with a Cease: their routers drop our routes) and
		// leave gobgp running: the process exit closes the remaining connections without
		// a NOTIFICATION.
		for _, k := range sortedKeys(s.peers) {
			if p := s.peers[k]; !p.GracefulRestart {
				if err := s.bgp.DisablePeer(ctx, &api.DisablePeerRequest{Address: k, Communication: "speaker shutting down"}); err != nil {
					errs = append(errs, fmt.Errorf("disable peer %s: %w", p.Name, err))
				}
			}
		}
		return errors.Join(errs...)
	}
	for _, p := range sortedPrefixes(ribSet(s.rib)) {
		if err := s.deletePath(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.bgp.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		errs = append(errs, fmt.Errorf("stop gobgp: %w", err))
	}
	s.log.Info("BGP speaker stopped")
	return errors.Join(errs...)
}

func portOr179(p uint16) uint16 {
	if p == 0 {
		return 179
	}
	return p
}

// abortSessions destroys this process's established TCP connections with addr — to its
// port, or accepted on listenPort when that is above 0 — with SOCK_DESTROY (the kernel
// sends a RST; nothing else goes out). It returns how many it destroyed.
func abortSessions(addr netip.Addr, port, listenPort int) (int, error) {
	fam := uint8(unix.AF_INET)
	if addr.Is6() {
		fam = unix.AF_INET6
	}
	socks, err := netlink.SocketDiagTCP(fam)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return 0, fmt.Errorf("list TCP sockets: %w", err)
	}
	mine, err := ownSocketInodes()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, so := range socks {
		dst, _ := netip.AddrFromSlice(so.ID.Destination)
		ours := int(so.ID.DestinationPort) == port || (listenPort > 0 && int(so.ID.SourcePort) == listenPort)
		if so.State != netlink.TCP_ESTABLISHED || dst.Unmap() != addr || !ours || !mine[so.INode] {
			continue
		}
		local := &net.TCPAddr{IP: so.ID.Source, Port: int(so.ID.SourcePort)}
		remote := &net.TCPAddr{IP: so.ID.Destination, Port: int(so.ID.DestinationPort)}
		if err := netlink.SocketDestroy(local, remote); err != nil {
			return n, fmt.Errorf("destroy %s → %s: %w", local, remote, err)
		}
		n++
	}
	return n, nil
}

// ownSocketInodes are the inodes of this process's sockets (from /proc/self/fd).
func ownSocketInodes() (map[uint32]bool, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("list own file descriptors: %w", err)
	}
	out := map[uint32]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		if ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]"), 10, 32); err == nil {
			out[uint32(ino)] = true
		}
	}
	return out, nil
}
