package bgp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestAbortSessions checks that abortSessions kills exactly this process's connection to
// the address and port, with a RST and no data: the other end reads ECONNRESET.
func TestAbortSessions(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("kernel test: SOCK_DESTROY needs root; skipped with -short")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	dial := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c, s
	}
	c1, s1 := dial()
	defer c1.Close()
	defer s1.Close()
	n, err := abortSessions(netip.MustParseAddr("127.0.0.1"), port+1, 0) // another port: nothing
	if err != nil || n != 0 {
		t.Fatalf("abortSessions for another port = %d, %v; want 0, nil", n, err)
	}
	n, err = abortSessions(netip.MustParseAddr("127.0.0.1"), port, 0)
	if err != nil || n != 1 {
		t.Fatalf("abortSessions = %d, %v; want 1, nil", n, err)
	}
	_ = s1.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	_, err = s1.Read(b)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the peer's read after the abort: %v, want ECONNRESET (not EOF: %v)", err, errors.Is(err, io.EOF))
	}
}
