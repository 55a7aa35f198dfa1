package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// LoadstoneNamespace holds the controller's leader-election Lease and the speakers'
// shared objects.
const LoadstoneNamespace = "loadstone-system"

// labRBAC gives the lab's Loadstone identities their permissions: exactly the rules the
// Helm chart grants (charts/loadstone/files/rbac.yaml, the one source for both), bound to
// the controller's user and to the speakers' group instead of ServiceAccounts. So every
// lab test also proves that the chart's RBAC is enough.
func labRBAC(repoRoot string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "charts", "loadstone", "files", "rbac.yaml"))
	if err != nil {
		return "", fmt.Errorf("chart RBAC rules: %w", err)
	}
	var rules map[string]struct {
		Cluster    []rbacv1.PolicyRule `json:"cluster"`
		Namespaced []rbacv1.PolicyRule `json:"namespaced"`
	}
	if err := yaml.UnmarshalStrict(raw, &rules); err != nil {
		return "", fmt.Errorf("chart RBAC rules: %w", err)
	}
	ctl, spk := rules["controller"], rules["speaker"]
	if len(ctl.Cluster) == 0 || len(spk.Cluster) == 0 {
		return "", errors.New("chart RBAC rules: controller or speaker rules missing")
	}
	controller := rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "loadstone:controller"}
	speakers := rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "loadstone:speakers"}
	objs := []any{
		&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: LoadstoneNamespace}},
	}
	for _, r := range []struct {
		name       string
		rules      []rbacv1.PolicyRule
		namespaced bool
		who        rbacv1.Subject
	}{
		{"loadstone-lab-controller", ctl.Cluster, false, controller},
		{"loadstone-lab-controller", ctl.Namespaced, true, controller},
		{"loadstone-lab-speaker", spk.Cluster, false, speakers},
		{"loadstone-lab-speaker", spk.Namespaced, true, speakers},
	} {
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.name}
		subjects := []rbacv1.Subject{r.who}
		if r.namespaced {
			meta := metav1.ObjectMeta{Name: r.name, Namespace: LoadstoneNamespace}
			ref.Kind = "Role"
			objs = append(objs,
				&rbacv1.Role{TypeMeta: rbacType("Role"), ObjectMeta: meta, Rules: r.rules},
				&rbacv1.RoleBinding{TypeMeta: rbacType("RoleBinding"), ObjectMeta: meta, RoleRef: ref, Subjects: subjects})
			continue
		}
		meta := metav1.ObjectMeta{Name: r.name}
		objs = append(objs,
			&rbacv1.ClusterRole{TypeMeta: rbacType("ClusterRole"), ObjectMeta: meta, Rules: r.rules},
			&rbacv1.ClusterRoleBinding{TypeMeta: rbacType("ClusterRoleBinding"), ObjectMeta: meta, RoleRef: ref, Subjects: subjects})
	}
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return "", err
		}
		docs = append(docs, string(b))
	}
	return strings.Join(docs, "---\n"), nil
}

func rbacType(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: kind}
}

// SamplePoolName and SampleL2Name are the sample configuration Up applies.
const (
	SamplePoolName = "lab-pool"
	SampleL2Name   = "lab-l2"
)

// samplePool is the lab's IPAddressPool and L2Advertisement (both families).
func samplePool() string {
	return fmt.Sprintf(`apiVersion: loadstone.io/v1beta1
kind: IPAddressPool
metadata:
  name: %s
spec:
  addresses: [%q, %q]
  # Skip 203.0.113.0 and .255: some clients and middleboxes mishandle them.
  avoidBuggyIPs: true
---
apiVersion: loadstone.io/v1beta1
kind: L2Advertisement
metadata:
  name: %s
spec:
  ipAddressPools: [%q]
`, SamplePoolName, PoolCIDR, PoolCIDR6, SampleL2Name, SamplePoolName)
}

// CRDDir is config/crd/bases of the repository.
func (l *Lab) CRDDir() string { return filepath.Join(l.cfg.RepoRoot, "config", "crd", "bases") }

// bootstrap applies the lab's RBAC and Loadstone's CRDs (when generated).
func (l *Lab) bootstrap(ctx context.Context) error {
	cfg, err := l.RESTConfig("admin")
	if err != nil {
		return err
	}
	a, err := NewApplier(cfg)
	if err != nil {
		return err
	}
	rbac, err := labRBAC(l.cfg.RepoRoot)
	if err != nil {
		return err
	}
	// The RBAC API of a fresh API server can take a moment after /readyz.
	var last error
	for i := 0; i < 50; i++ {
		if last = a.Apply(ctx, []byte(rbac)); last == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last != nil {
		return last
	}
	if n, err := a.ApplyCRDs(ctx, l.CRDDir()); err != nil {
		return fmt.Errorf("CRDs: %w", err)
	} else if n == 0 {
		return fmt.Errorf("CRDs: none in %s (run `make generate`)", l.CRDDir())
	}
	return nil
}

// applySamplePool applies the sample IPAddressPool and L2Advertisement.
func (l *Lab) applySamplePool(ctx context.Context) error {
	cfg, err := l.RESTConfig("admin")
	if err != nil {
		return err
	}
	a, err := NewApplier(cfg)
	if err != nil {
		return err
	}
	a.Namespace = LoadstoneNamespace
	return a.Apply(ctx, []byte(samplePool()))
}

// ControllerArgs is the command line of the Loadstone controller.
func (l *Lab) ControllerArgs(bin string) []string {
	return []string{bin,
		"--kubeconfig", l.KubeconfigPath("loadstone-controller"),
		"--leader-elect=true",
		"--leader-elect-namespace", LoadstoneNamespace,
	}
}

// SpeakerArgs is the command line of the speaker of node n. LOADSTONE_SPEAKER_ARGS adds
// flags (split at spaces), for experiments such as other memberlist timers in B1.
func (l *Lab) SpeakerArgs(bin string, n Node) []string {
	args := []string{bin,
		"--kubeconfig", l.KubeconfigPath("speaker-" + n.Name),
		"--node-name", n.Name,
	}
	return append(args, strings.Fields(os.Getenv("LOADSTONE_SPEAKER_ARGS"))...)
}

// startLoadstone applies the sample pool and starts the controller and one speaker per
// node. A program that exits right after start (bad flag, missing permission) is an error
// that quotes the first lines of its log.
func (l *Lab) startLoadstone(ctx context.Context, bins binaries) error {
	if err := l.applySamplePool(ctx); err != nil {
		return fmt.Errorf("sample pool: %w", err)
	}
	l.log.Info("starting the Loadstone controller in " + ControlPlaneNS)
	started := []string{"loadstone-controller"}
	if _, err := l.startProc("loadstone-controller", ControlPlaneNS, l.ControllerArgs(bins.controller)); err != nil {
		return err
	}
	l.log.Info("starting one Loadstone speaker per node")
	for _, n := range l.nodes {
		started = append(started, "speaker-"+n.Name)
		if _, err := l.startProc("speaker-"+n.Name, n.Name, l.SpeakerArgs(bins.speaker, n)); err != nil {
			return err
		}
	}
	time.Sleep(1500 * time.Millisecond)
	var errs []error
	for _, name := range started {
		if p, ok := l.Proc(name); ok && !p.Alive() {
			errs = append(errs, fmt.Errorf("%s exited right after start: %s", name, headLines(p.Log, 2)))
		}
	}
	return errors.Join(errs...)
}

// headLines returns the first n non-empty lines of a file, joined by " | " (a panic or a
// flag error says what went wrong first).
func headLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ") + " (log: " + path + ")"
}

// MemberlistSecret is the Secret (in LoadstoneNamespace) with the speakers' gossip key.
// The controller creates it with a random key at start (its default
// --memberlist-secret-name and the Lease's namespace), as in a chart install.
const MemberlistSecret = "loadstone-memberlist"
