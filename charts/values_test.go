package charts_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// render runs helm template with --set values; it returns the output and helm's stderr.
func render(t *testing.T, set ...string) ([]byte, string, error) {
	t.Helper()
	args := []string{"template", "loadstone", filepath.Join(testenv.RepoRoot(), "charts", "loadstone"),
		"--namespace", "loadstone-system", "--kube-version", "v1.37.2"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helmBinary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return out, stderr.String(), err
}

func mustRender(t *testing.T, set ...string) []*unstructured.Unstructured {
	t.Helper()
	out, stderr, err := render(t, set...)
	if err != nil {
		t.Fatalf("helm template %v: %v: %s", set, err, stderr)
	}
	return decodeAll(t, out)
}

func find[T any](t *testing.T, objs []*unstructured.Unstructured, kind, name string) *T {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			var v T
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err != nil {
				t.Fatal(err)
			}
			return &v
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

// TestSpeakerRunsAsRootWithOnlyNetCapabilities: added capabilities are effective only for
// UID 0 (the image's user is 65532), so the speaker runs as root with every capability
// dropped but NET_ADMIN and NET_RAW; the controller runs as nonroot with none.
func TestSpeakerRunsAsRootWithOnlyNetCapabilities(t *testing.T) {
	objs := mustRender(t)
	ds := find[appsv1.DaemonSet](t, objs, "DaemonSet", "loadstone-speaker")
	pod := ds.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != 0 || psc.RunAsNonRoot == nil || *psc.RunAsNonRoot {
		t.Errorf("speaker pod securityContext %+v: want runAsUser 0, runAsNonRoot false", psc)
	}
	if !pod.HostNetwork || pod.PriorityClassName != "system-node-critical" {
		t.Errorf("speaker hostNetwork %v, priorityClassName %q", pod.HostNetwork, pod.PriorityClassName)
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("speaker container has no capabilities")
	}
	if got := sc.Capabilities.Drop; !slices.Equal(got, []corev1.Capability{"ALL"}) {
		t.Errorf("speaker drops %v, want [ALL]", got)
	}
	if got := sc.Capabilities.Add; !slices.Equal(got, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("speaker adds %v, want [NET_ADMIN NET_RAW]", got)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Privileged == nil || *sc.Privileged ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("speaker container securityContext %+v: want no escalation, not privileged, read-only root", sc)
	}
	// Probes on the health port, which is not the metrics port.
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port.String() != "health" {
		t.Errorf("speaker readiness probe %+v", c.ReadinessProbe.HTTPGet)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["health"] != 7573 || ports["metrics"] != 7472 || !slices.Contains(c.Args, "--health-probe-bind-address=:7573") {
		t.Errorf("speaker ports %v, args %v", ports, c.Args)
	}

	dep := find[appsv1.Deployment](t, objs, "Deployment", "loadstone-controller")
	cpod := dep.Spec.Template.Spec
	if s := cpod.SecurityContext; s == nil || s.RunAsNonRoot == nil || !*s.RunAsNonRoot || s.RunAsUser == nil || *s.RunAsUser != 65532 {
		t.Errorf("controller pod securityContext %+v: want nonroot 65532", cpod.SecurityContext)
	}
	csc := cpod.Containers[0].SecurityContext
	if csc == nil || csc.Capabilities == nil || len(csc.Capabilities.Add) != 0 || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("controller capabilities %+v: want drop [ALL], add none", csc.Capabilities)
	}
}

func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		set, want string
	}{
		{"speaker.logLevel=verbose", "at '/speaker/logLevel': value must be one of 'debug', 'info', 'warn', 'error'"},
		{"controller.replicas=0", "at '/controller/replicas': minimum: got 0, want 1"},
		{"speaker.memberlist.probeInterval=fast", "at '/speaker/memberlist/probeInterval': 'fast' does not match pattern"},
		{"metrics.port=70000", "at '/metrics/port': maximum"},
		{"speaker.dataplan=false", "at '/speaker': additional properties 'dataplan' not allowed"},
		{"image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"},
		{"controller.extraArgs[0]=workers", "at '/controller/extraArgs/0': 'workers' does not match pattern"},
		{"speaker.memberlist.suspicionMult=0", "at '/speaker/memberlist/suspicionMult'"},
		{"namespace.podSecurity=baseline", "at '/namespace/podSecurity': value must be 'privileged'"},
		{"speaker.healthPort=7946", "speaker.memberlistPort, speaker.healthPort and metrics.port must differ"},
	} {
		_, stderr, err := render(t, tc.set)
		if err == nil {
			t.Errorf("--set %s rendered", tc.set)
			continue
		}
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("--set %s: helm said %q, want it to contain %q", tc.set, stderr, tc.want)
		}
	}
	// And the values the schema must keep accepting.
	for _, set := range []string{"speaker.memberlist.probeInterval=90ms", "speaker.memberlist.suspicionMult=3", "controller.goMemLimit=off",
		"speaker.logLevel=debug", "controller.extraArgs[0]=--workers=32"} {
		if _, stderr, err := render(t, set); err != nil {
			t.Errorf("--set %s rejected: %s", set, stderr)
		}
	}
}

// TestNoKeyMaterialRendered: the memberlist key is the controller's to create; a render
// holds no Secret and is the same every time (a random key would differ).
func TestNoKeyMaterialRendered(t *testing.T) {
	for _, set := range [][]string{nil, {"speaker.existingSecret=mine"}, {"namespace.create=true"}} {
		a, stderr, err := render(t, set...)
		if err != nil {
			t.Fatalf("%v: %s", set, stderr)
		}
		b, _, _ := render(t, set...)
		if !bytes.Equal(a, b) {
			t.Errorf("%v: two renders differ", set)
		}
		for _, o := range decodeAll(t, a) {
			if o.GetKind() == "Secret" {
				t.Errorf("%v: rendered Secret %s", set, o.GetName())
			}
		}
	}
	tpl, err := os.ReadDir(filepath.Join(testenv.RepoRoot(), "charts", "loadstone", "templates"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tpl {
		b, _ := os.ReadFile(filepath.Join(testenv.RepoRoot(), "charts", "loadstone", "templates", e.Name()))
		for _, fn := range []string{"lookup", "randAlphaNum", "randAscii", "randBytes", "genPrivateKey"} {
			if bytes.Contains(b, []byte(fn+" ")) {
				t.Errorf("templates/%s uses %s", e.Name(), fn)
			}
		}
	}
	// The controller is told to create the Secret the speakers read, unless it is the user's.
	dep := find[appsv1.Deployment](t, mustRender(t), "Deployment", "loadstone-controller")
	ds := find[appsv1.DaemonSet](t, mustRender(t), "DaemonSet", "loadstone-speaker")
	if !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--memberlist-secret-name=loadstone-memberlist") ||
		!slices.Contains(ds.Spec.Template.Spec.Containers[0].Args, "--secret-name=loadstone-memberlist") {
		t.Error("controller and speaker do not name the same memberlist Secret")
	}
	dep = find[appsv1.Deployment](t, mustRender(t, "speaker.existingSecret=mine"), "Deployment", "loadstone-controller")
	if !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--memberlist-secret-name=") {
		t.Errorf("with existingSecret the controller still creates one: %v", dep.Spec.Template.Spec.Containers[0].Args)
	}
}

type grant struct{ group, resource, verb string }

func grants(rules []rbacv1.PolicyRule) map[grant]bool {
	out := map[grant]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out[grant{g, res, v}] = true
				}
			}
		}
		for _, u := range r.NonResourceURLs {
			for _, v := range r.Verbs {
				out[grant{"", u, v}] = true
			}
		}
	}
	return out
}

func TestRBAC(t *testing.T) {
	objs := mustRender(t)
	role := func(kind, name string) map[grant]bool {
		if kind == "Role" {
			return grants(find[rbacv1.Role](t, objs, kind, name).Rules)
		}
		return grants(find[rbacv1.ClusterRole](t, objs, kind, name).Rules)
	}
	ctlC, ctlN := role("ClusterRole", "loadstone-controller"), role("Role", "loadstone-controller")
	spkC, spkN := role("ClusterRole", "loadstone-speaker"), role("Role", "loadstone-speaker")
	for name, g := range map[string]map[grant]bool{"controller cluster": ctlC, "controller namespaced": ctlN, "speaker cluster": spkC, "speaker namespaced": spkN} {
		for k := range g {
			if k.verb == "*" || k.resource == "*" || k.group == "*" {
				t.Errorf("%s: wildcard %+v", name, k)
			}
			if k.resource == "secrets" && strings.HasPrefix(name, "speaker") && (k.verb != "list" && k.verb != "watch" || name != "speaker namespaced") {
				t.Errorf("%s: secrets %s (want list and watch in the namespace only)", name, k.verb)
			}
			if k.resource == "secrets" && strings.HasPrefix(name, "controller") && (k.verb != "create" || name != "controller namespaced") {
				t.Errorf("%s: secrets %s (want create in the namespace only)", name, k.verb)
			}
			if k.resource == "services" && k.verb != "list" && k.verb != "watch" {
				t.Errorf("%s: services %s (Services are only read; status is a subresource)", name, k.verb)
			}
			if k.resource == "pods" {
				t.Errorf("%s: pods %s (nothing reads pods)", name, k.verb)
			}
		}
	}
	for _, want := range []struct {
		g    map[grant]bool
		name string
		k    grant
	}{
		{ctlC, "controller", grant{"", "services/status", "patch"}},
		{ctlC, "controller", grant{"events.k8s.io", "events", "create"}},
		{ctlN, "controller", grant{"coordination.k8s.io", "leases", "update"}},
		{ctlN, "controller", grant{"", "secrets", "create"}},
		{spkC, "speaker", grant{"loadstone.io", "servicel2statuses/status", "patch"}},
		{spkN, "speaker", grant{"", "secrets", "watch"}},
		{ctlC, "controller", grant{"authentication.k8s.io", "tokenreviews", "create"}},
		{spkC, "speaker", grant{"authorization.k8s.io", "subjectaccessreviews", "create"}},
	} {
		if !want.g[want.k] {
			t.Errorf("%s lacks %+v", want.name, want.k)
		}
	}
	if spkC[grant{"loadstone.io", "l2advertisements/status", "patch"}] || spkC[grant{"loadstone.io", "l2advertisements/status", "update"}] {
		t.Error("speaker may write l2advertisements/status (the controller owns it)")
	}
	reader := grants(find[rbacv1.ClusterRole](t, objs, "ClusterRole", "loadstone-metrics-reader").Rules)
	if len(reader) != 1 || !reader[grant{"", "/metrics", "get"}] {
		t.Errorf("metrics-reader grants %v, want get /metrics only", reader)
	}
	// Without secure metrics: no review rights, no reader role.
	for _, o := range mustRender(t, "metrics.secure=false") {
		if o.GetName() == "loadstone-metrics-reader" {
			t.Error("metrics-reader rendered with metrics.secure=false")
		}
		if o.GetKind() == "ClusterRole" {
			var cr rbacv1.ClusterRole
			_ = runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cr)
			if grants(cr.Rules)[grant{"authentication.k8s.io", "tokenreviews", "create"}] {
				t.Errorf("%s may create TokenReviews with metrics.secure=false", cr.Name)
			}
		}
	}
}

// TestNamespacePodSecurity: namespace.create renders the release namespace with the
// privileged Pod Security level the speaker needs.
func TestNamespacePodSecurity(t *testing.T) {
	ns := find[corev1.Namespace](t, mustRender(t, "namespace.create=true"), "Namespace", "loadstone-system")
	for _, mode := range []string{"enforce", "audit", "warn"} {
		if got := ns.Labels["pod-security.kubernetes.io/"+mode]; got != "privileged" {
			t.Errorf("namespace label %s = %q, want privileged", mode, got)
		}
	}
	for _, o := range mustRender(t) {
		if o.GetKind() == "Namespace" {
			t.Error("namespace rendered with namespace.create=false")
		}
	}
}

func TestValuesReachTheBinaries(t *testing.T) {
	objs := mustRender(t, "speaker.logLevel=debug", "speaker.dataplane=false", "speaker.extraArgs[0]=--dataplane-resync-period=1m",
		"metrics.secure=false", "imagePullSecrets[0].name=regcred", "speaker.podLabels.team=net", "controller.podAnnotations.a=b")
	ds := find[appsv1.DaemonSet](t, objs, "DaemonSet", "loadstone-speaker")
	args := ds.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--log-level=debug", "--dataplane=false", "--dataplane-resync-period=1m", "--metrics-bind-address=127.0.0.1:7472"} {
		if !slices.Contains(args, want) {
			t.Errorf("speaker args %v lack %s", args, want)
		}
	}
	if slices.Contains(args, "--metrics-secure") {
		t.Error("--metrics-secure with metrics.secure=false")
	}
	if ds.Spec.Template.Labels["team"] != "net" || len(ds.Spec.Template.Spec.ImagePullSecrets) != 1 {
		t.Errorf("speaker pod labels %v, pull secrets %v", ds.Spec.Template.Labels, ds.Spec.Template.Spec.ImagePullSecrets)
	}
	dep := find[appsv1.Deployment](t, objs, "Deployment", "loadstone-controller")
	if dep.Spec.Template.Annotations["a"] != "b" {
		t.Errorf("controller pod annotations %v", dep.Spec.Template.Annotations)
	}
	// The flags the chart passes exist (a renamed flag would crash the pods at start).
	for bin, a := range map[string][]string{"speaker": args, "controller": dep.Spec.Template.Spec.Containers[0].Args} {
		cmd := exec.Command("go", "run", "./"+bin, "-h")
		cmd.Dir = testenv.RepoRoot()
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		for _, f := range a {
			name, _, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			if !bytes.Contains(out, []byte("  -"+name+"\n")) && !bytes.Contains(out, []byte("  -"+name+" ")) {
				t.Errorf("%s has no flag -%s (from %s)", bin, name, f)
			}
		}
	}
}
