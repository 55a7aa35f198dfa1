// Command crdref writes docs/reference.md from the CRD manifests (see internal/crdref).
//
// Usage: go run ./hack/crdref CRD_DIR OUT_FILE
package main

import (
	"fmt"
	"os"

	"github.com/loadstone-lb/loadstone/internal/crdref"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: crdref CRD_DIR OUT_FILE")
		os.Exit(2)
	}
	crds, err := crdref.Load(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "crdref:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[2], []byte(crdref.Render(crds)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "crdref:", err)
		os.Exit(1)
	}
}
