package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Applier applies YAML manifests with server-side apply.
type Applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// Namespace is used for namespaced objects that name none.
	Namespace string
}

// NewApplier returns an Applier for a client configuration.
func NewApplier(cfg *rest.Config) (*Applier, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), Namespace: "default"}, nil
}

// DecodeYAML splits a multi-document YAML stream into objects (empty documents skipped).
func DecodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
}

// Apply server-side-applies every object of the YAML stream, in order.
func (a *Applier) Apply(ctx context.Context, data []byte) error {
	objs, err := DecodeYAML(data)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := a.ApplyObject(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// ApplyObject server-side-applies one object (field manager "loadstone-lab", forced).
func (a *Applier) ApplyObject(ctx context.Context, o *unstructured.Unstructured) error {
	return a.apply(ctx, o, nil)
}

// DryRun sends the apply with dryRun=All: the API server validates and admits the object
// but stores nothing.
func (a *Applier) DryRun(ctx context.Context, o *unstructured.Unstructured) error {
	return a.apply(ctx, o, []string{metav1.DryRunAll})
}

func (a *Applier) apply(ctx context.Context, o *unstructured.Unstructured, dryRun []string) error {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return fmt.Errorf("apply %s %s: %w", gvk.Kind, o.GetName(), err)
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if o.GetNamespace() == "" {
			o.SetNamespace(a.Namespace)
		}
		ri = a.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	} else {
		o.SetNamespace("")
	}
	body, err := o.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: "loadstone-lab", Force: &force, DryRun: dryRun}); err != nil {
		return fmt.Errorf("apply %s %s: %w", gvk.Kind, o.GetName(), err)
	}
	return nil
}

// ApplyCRDs applies every YAML file of dir (config/crd/bases) and waits until the CRDs are
// Established. It returns the number of files applied.
func (a *Applier) ApplyCRDs(ctx context.Context, dir string) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return 0, err
	}
	sort.Strings(files)
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		objs, err := DecodeYAML(b)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		for _, o := range objs {
			if err := a.ApplyObject(ctx, o); err != nil {
				return 0, fmt.Errorf("%s: %w", f, err)
			}
			if o.GetKind() == "CustomResourceDefinition" {
				names = append(names, o.GetName())
			}
		}
	}
	crdGVR := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range names {
		for {
			u, err := a.dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err == nil && crdEstablished(u) {
				break
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("CRD %s not Established after 30 s", n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	a.mapper.Reset()
	return len(files), nil
}

func crdEstablished(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
