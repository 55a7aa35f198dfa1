package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/l2-vs-bgp.md shows the lab router's FRR configuration verbatim, so the guide's
// example is the one every BGP lab test runs.
func TestGuideShowsTheLabRouterConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "l2-vs-bgp.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, conf := range map[string]string{"bgpd": bgpdConfig(), "bfdd": bfddConfig()} {
		if !strings.Contains(string(raw), "```\n"+conf+"```\n") {
			t.Errorf("docs/l2-vs-bgp.md does not show the lab's %s configuration verbatim:\n%s", name, conf)
		}
	}
}
