package framework

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/loadstone-lb/loadstone/internal/nsthread"
)

// ServeAnycast puts addr on the loopback of namespace ns and serves the workload's HTTP
// answer there on port ("pod=<name> node=<ns> client=<ip:port>", so Get, Spread and
// ProbeHTTP count it like a pod's). Together with a reference peer announcing addr/32
// from several nodes it stands in for a Service behind ECMP before the speaker exists.
// Both the address and the server go away when the test ends.
func (e *Env) ServeAnycast(ns string, addr netip.Addr, port int, name string) {
	e.T.Helper()
	bits := 32
	if addr.Is6() {
		bits = 128
	}
	pfx := netip.PrefixFrom(addr, bits).String()
	if out, err := ipCmd(ns, "addr", "replace", pfx, "dev", "lo"); err != nil {
		e.T.Fatalf("add %s to lo in %s: %v: %s", pfx, ns, err, out)
	}
	e.T.Cleanup(func() { _, _ = ipCmd(ns, "addr", "del", pfx, "dev", "lo") })
	var ln net.Listener
	listen := func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr.String(), fmt.Sprint(port)))
		return err
	}
	// IPv6 loopback addresses may take a moment to leave "tentative".
	var err error
	for i := 0; i < 50; i++ {
		if err = nsthread.DoNamed(ns, listen); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		e.T.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pod=%s node=%s client=%s\n", name, ns, r.RemoteAddr)
	})}
	go func() { _ = srv.Serve(ln) }()
	e.T.Cleanup(func() { _ = srv.Close() })
}
