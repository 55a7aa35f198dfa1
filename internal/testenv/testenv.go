package testenv

import (
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"

	"github.com/go-logr/logr"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// Default versions must match hack/k8s-binaries.sh.
const (
	k8sVersion  = "v1.37.2"
	etcdVersion = "v3.6.16"
)

// Env is a running API server.
type Env struct {
	Config *rest.Config
	Scheme *runtime.Scheme
	Client client.Client
	env    *envtest.Environment
}

// AssetsDir returns the directory holding etcd and kube-apiserver, or "" if it has none.
func AssetsDir() string {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		cache := os.Getenv("LOADSTONE_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "loadstone")
		}
		dir = filepath.Join(cache, "k8s-"+k8sVersion+"-etcd-"+etcdVersion, "bin")
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return ""
		}
	}
	return dir
}

// RepoRoot returns the repository's top directory (where go.mod is).
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var quietOnce sync.Once

// Options tune Start.
type Options struct {
	// APIServerFlags are extra kube-apiserver flags, "name" -> value.
	APIServerFlags map[string]string
	// AddToScheme adds more types to the private scheme (Loadstone's and client-go's
	// built-in types are always there).
	AddToScheme []func(*runtime.Scheme) error
}

// Start starts an API server with the CRDs of config/crd/bases installed, and stops it when
// the test ends. Under -short it skips the test; otherwise missing binaries are a failure
// that says how to build them.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("envtest: needs the real kube-apiserver; not run with -short")
	}
	// controller-runtime prints a stack trace when its logger is used but never set;
	// tests read the API objects and Events instead of its logs.
	quietOnce.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	assets := AssetsDir()
	if assets == "" {
		t.Fatal("envtest: kube-apiserver and etcd not found: run `make k8s-binaries` (or `make test`), or set KUBEBUILDER_ASSETS")
	}
	scheme := runtime.NewScheme()
	adders := append([]func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1beta1.AddToScheme}, opts.AddToScheme...)
	for _, add := range adders {
		if err := add(scheme); err != nil {
			t.Fatalf("envtest: scheme: %v", err)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	for k, v := range opts.APIServerFlags {
		env.ControlPlane.GetAPIServer().Configure().Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: start: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("envtest: stop: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("envtest: client: %v", err)
	}
	return &Env{Config: cfg, Scheme: scheme, Client: c, env: env}
}
