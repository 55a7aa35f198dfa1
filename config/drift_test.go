package config_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// TestGeneratedFilesDoNotDrift regenerates the deepcopy code and the CRD manifests with the
// pinned controller-gen into a temporary directory (hack/generate.sh OUTDIR) and fails when
// the checked-in files differ: run `make generate` and commit the result.
func TestGeneratedFilesDoNotDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("drift: runs controller-gen (installs it once); not run with -short")
	}
	root := testenv.RepoRoot()
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "hack", "generate.sh"), out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/generate.sh %s: %v\n%s", out, err, b)
	}

	generated := func(dir string) []string {
		files, err := filepath.Glob(filepath.Join(dir, "config", "crd", "bases", "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		rel := []string{filepath.Join("api", "v1beta1", "zz_generated.deepcopy.go")}
		for _, f := range files {
			r, _ := filepath.Rel(dir, f)
			rel = append(rel, r)
		}
		sort.Strings(rel)
		return rel
	}
	want, have := generated(out), generated(root)
	if len(want) < 7 {
		t.Fatalf("generate.sh produced only %v", want)
	}
	inWant := map[string]bool{}
	for _, f := range want {
		inWant[f] = true
		fresh, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		checked, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Errorf("%s: generated but not checked in (run `make generate`): %v", f, err)
			continue
		}
		if !bytes.Equal(fresh, checked) {
			t.Errorf("%s differs from what hack/generate.sh produces: run `make generate` and commit", f)
		}
	}
	for _, f := range have {
		if !inWant[f] {
			t.Errorf("%s is checked in but no longer generated: delete it (make generate does)", f)
		}
	}
}
