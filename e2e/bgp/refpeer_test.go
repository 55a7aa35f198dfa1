package bgp

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

var (
	gobgpOnce sync.Once
	gobgpBin  string
	gobgpErr  error
)

// gobgpPeerBin builds ./internal/gobgppeer once per test binary.
func gobgpPeerBin(t testing.TB, e *framework.Env) string {
	t.Helper()
	gobgpOnce.Do(func() {
		wd, _ := os.Getwd()
		repo, err := lab.FindRepoRoot(wd)
		if err != nil {
			gobgpErr = err
			return
		}
		gobgpBin = filepath.Join(e.Lab.Dir(), "bin", "gobgppeer")
		out, err := exec.Command("go", "build", "-C", repo, "-o", gobgpBin, "./e2e/bgp/internal/gobgppeer").CombinedOutput()
		if err != nil {
			gobgpErr = fmt.Errorf("go build gobgppeer: %w: %s", err, out)
		}
	})
	if gobgpErr != nil {
		t.Fatal(gobgpErr)
	}
	return gobgpBin
}

// gobgpPeer is a reference gobgp v3 speaker (the library the speaker embeds).
type gobgpPeer struct {
	// First prefix and Count consecutive ones of its length.
	First netip.Prefix
	Count int
	// LinkBandwidth in bytes/s (gobgp encodes it non-transitive); 0 for none.
	LinkBandwidth float64
}

// startGoBGPPeer runs gobgppeer in a node's namespace; it stops when the test ends.
func startGoBGPPeer(t testing.TB, e *framework.Env, node lab.Node, c gobgpPeer) string {
	t.Helper()
	bin := gobgpPeerBin(t, e)
	peer, nh := lab.RouterIP, node.IP.String()
	if c.First.Addr().Is6() {
		peer, nh = lab.RouterIP6, node.IP6.String()
	}
	if c.Count == 0 {
		c.Count = 1
	}
	name := "gobgppeer-" + node.Name
	argv := []string{bin, "-router-id", node.IP.String(), "-as", fmt.Sprint(lab.NodeASN), "-peer", peer,
		"-peer-as", fmt.Sprint(lab.RouterASN), "-nexthop", nh, "-first", c.First.String(),
		"-count", fmt.Sprint(c.Count), "-link-bandwidth", fmt.Sprint(c.LinkBandwidth)}
	if _, err := e.Lab.Spawn(name, node.Name, argv); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, ok := e.Lab.Proc(name); ok {
			_, _ = e.Lab.StopProc(name, 2*time.Second)
		}
	})
	return name
}
