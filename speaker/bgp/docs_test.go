package bgp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/l2-vs-bgp.md shows the BIRD configuration of TestBIRD verbatim.
func TestGuideShowsTheBIRDConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "l2-vs-bgp.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "```\n"+birdConf+"```\n") {
		t.Errorf("docs/l2-vs-bgp.md does not show TestBIRD's configuration verbatim:\n%s", birdConf)
	}
}
