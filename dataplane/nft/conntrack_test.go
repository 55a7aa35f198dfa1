package nft

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/loadstone-lb/loadstone/internal/netnstest"
)

// FlushConntrack deletes exactly the entries NATed to the given backends, per family,
// in the Applier's namespace (entries are inserted with conntrack -I in a fresh netns).
func TestFlushConntrack(t *testing.T) {
	kernelTest(t)
	name := netnstest.New(t, "lsdp-ct-"+netnstest.Suffix())
	insert := func(src, dst, backend string, sport string) {
		run(t, "ip", "netns", "exec", name, "conntrack", "-I", "-p", "tcp", "-s", src, "-d", dst,
			"--sport", sport, "--dport", "80", "-r", backend, "-q", src, "--reply-port-src", "8080", "--reply-port-dst", sport,
			"--state", "ESTABLISHED", "-t", "300")
	}
	insert("198.51.100.10", "203.0.113.5", "198.18.2.1", "1000")
	insert("198.51.100.10", "203.0.113.5", "198.18.2.1", "1001")
	insert("198.51.100.10", "203.0.113.5", "198.18.3.1", "1002")
	insert("2001:db8:2::10", "2001:db8:100::5", "2001:db8:18:2::1", "1003")
	insert("2001:db8:2::10", "2001:db8:100::5", "2001:db8:18:3::1", "1004")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a := &Applier{cfg: Config{NetNS: int(h)}}
	n, err := a.FlushConntrack([]netip.Addr{netip.MustParseAddr("198.18.2.1"), netip.MustParseAddr("2001:db8:18:2::1")})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("deleted %d entries, want 3", n)
	}
	list := netnstest.Run(t, "ip", "netns", "exec", name, "sh", "-c", "conntrack -L -f ipv4 2>/dev/null; conntrack -L -f ipv6 2>/dev/null")
	for _, gone := range []string{"src=198.18.2.1 ", "src=2001:db8:18:2::1 "} {
		if strings.Contains(list, gone) {
			t.Errorf("an entry NATed to %s is left:\n%s", gone, list)
		}
	}
	for _, kept := range []string{"src=198.18.3.1 ", "src=2001:db8:18:3::1 "} {
		if !strings.Contains(list, kept) {
			t.Errorf("the entry NATed to %s is gone:\n%s", kept, list)
		}
	}
	if n, err := a.FlushConntrack(nil); n != 0 || err != nil {
		t.Errorf("nothing to flush: %d, %v", n, err)
	}
}
