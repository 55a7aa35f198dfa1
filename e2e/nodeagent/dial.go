package nodeagent

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/vishvananda/netns"

	"github.com/loadstone-lb/loadstone/internal/nsthread"
)

// dialIn connects from inside ns (the socket belongs to ns for its whole life).
func dialIn(ctx context.Context, ns netns.NsHandle, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := nsthread.Do(ns, func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	return conn, err
}

// httpClientIn returns an HTTP client whose connections are made from inside ns, without
// keep-alives (each probe is a fresh connection, as the kubelet's are).
func httpClientIn(ns netns.NsHandle, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialIn(ctx, ns, network, addr)
			},
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
