// Package charts_test checks the Helm chart: its CRDs are the generated ones, and what it
// renders is accepted by the real API server (server-side dry run), with the default values
// and with the options an operator flips.
package charts_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

func TestChartCRDsMatchGenerated(t *testing.T) {
	root := testenv.RepoRoot()
	gen, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(gen) == 0 {
		t.Fatalf("no generated CRDs in config/crd/bases (err %v)", err)
	}
	chartDir := filepath.Join(root, "charts", "loadstone", "crds")
	inChart, _ := filepath.Glob(filepath.Join(chartDir, "*.yaml"))
	if len(inChart) != len(gen) {
		t.Errorf("chart has %d CRD files, config/crd/bases has %d: run `make generate`", len(inChart), len(gen))
	}
	for _, g := range gen {
		want, _ := os.ReadFile(g)
		got, err := os.ReadFile(filepath.Join(chartDir, filepath.Base(g)))
		if err != nil {
			t.Errorf("chart lacks %s: run `make generate`", filepath.Base(g))
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/loadstone/crds/%s differs from config/crd/bases: run `make generate`", filepath.Base(g))
		}
	}
}

// helmBinary finds the pinned helm the Makefile installs (LOADSTONE_HELM).
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LOADSTONE_HELM"); p != "" {
		return p
	}
	if testing.Short() {
		t.Skip("helm: set LOADSTONE_HELM (make test does); not needed with -short")
	}
	t.Fatal("LOADSTONE_HELM is not set: run through `make test`, or LOADSTONE_HELM=$(hack/tools.sh helm)")
	return ""
}

func TestChartRendersValidObjects(t *testing.T) {
	helm := helmBinary(t)
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName("loadstone-system")
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  []string
	}{
		{name: "defaults"},
		{name: "existing secret, class required, timers, every option", set: []string{"speaker.existingSecret=my-key", "requireClass=true", "controller.replicas=1",
			"speaker.memberlist.probeInterval=90ms", "speaker.memberlist.probeTimeout=70ms", "speaker.memberlist.suspicionMult=3",
			"namespace.create=true", "metrics.secure=false", "speaker.dataplane=false", "controller.logLevel=debug",
			"imagePullSecrets[0].name=regcred", "controller.priorityClassName=system-cluster-critical",
			"speaker.podAnnotations.a=b", "controller.podLabels.team=net", "speaker.extraArgs[0]=--dataplane-resync-period=1m",
			"controller.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=kubernetes.io/os",
			"controller.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists"}},
		{name: "metrics off", set: []string{"metrics.enabled=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "loadstone", filepath.Join(testenv.RepoRoot(), "charts", "loadstone"), "--namespace", "loadstone-system", "--kube-version", "v1.37.2"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helm, args...).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("helm template: %v: %s", err, ee.Stderr)
				}
				t.Fatalf("helm template: %v", err)
			}
			objs := decodeAll(t, out)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.GetKind()]++
				err := env.Client.Create(ctx, o, client.DryRunAll)
				if o.GetKind() == "Namespace" && apierrors.IsAlreadyExists(err) {
					continue // the test made it; the dry run got as far as storage
				}
				if err != nil {
					t.Errorf("%s %s rejected by the API server: %v", o.GetKind(), o.GetName(), err)
				}
			}
			for _, k := range []string{"Deployment", "DaemonSet", "ClusterRole", "ServiceAccount"} {
				if kinds[k] == 0 {
					t.Errorf("chart rendered no %s (got %v)", k, kinds)
				}
			}
			// The chart never renders the memberlist key: the controller creates it.
			wantSecrets := 0
			if strings.Contains(strings.Join(tc.set, " "), "probeInterval") {
				for _, flag := range []string{"--memberlist-probe-interval=90ms", "--memberlist-probe-timeout=70ms", "--memberlist-suspicion-mult=3"} {
					if !bytes.Contains(out, []byte("- "+flag+"\n")) {
						t.Errorf("speaker args lack %s", flag)
					}
				}
			} else if bytes.Contains(out, []byte("--memberlist-probe")) {
				t.Error("default values set memberlist timers; the speaker's defaults should apply")
			}
			if kinds["Secret"] != wantSecrets {
				t.Errorf("chart rendered %d Secrets, want %d", kinds["Secret"], wantSecrets)
			}
		})
	}
}

func decodeAll(t *testing.T, manifest []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		o := &unstructured.Unstructured{}
		if err := dec.Decode(&o.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decoding rendered chart: %v", err)
		}
		if len(o.Object) > 0 {
			objs = append(objs, o)
		}
	}
}
