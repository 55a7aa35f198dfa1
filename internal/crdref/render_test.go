package crdref

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// docs/reference.md is what Render makes of config/crd/bases: a change to an API type
// (and its CRD, which the config drift test keeps current) must regenerate it.
func TestReferenceIsCurrent(t *testing.T) {
	root := repoRoot(t)
	crds, err := Load(filepath.Join(root, "config", "crd", "bases"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := Render(crds); string(got) != want {
		t.Fatal("docs/reference.md is not current: run `make generate`")
	}
	for _, crd := range crds {
		if !strings.Contains(string(got), "## "+crd.Spec.Names.Kind+"\n") {
			t.Errorf("no section for %s", crd.Spec.Names.Kind)
		}
	}
}

func TestRenderFields(t *testing.T) {
	max := int64(4)
	lt := "map"
	crd := apiextv1.CustomResourceDefinition{Spec: apiextv1.CustomResourceDefinitionSpec{
		Group: "example.io", Scope: apiextv1.ClusterScoped,
		Names: apiextv1.CustomResourceDefinitionNames{Kind: "Widget", ShortNames: []string{"wd"}},
		Versions: []apiextv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Schema: &apiextv1.CustomResourceValidation{
			OpenAPIV3Schema: &apiextv1.JSONSchemaProps{Description: "Widget is\na thing.", Properties: map[string]apiextv1.JSONSchemaProps{
				"spec": {Type: "object", Required: []string{"size"}, Properties: map[string]apiextv1.JSONSchemaProps{
					"size":  {Type: "integer", Format: "int32", Description: "Size | in parts."},
					"parts": {Type: "array", MaxItems: &max, XListType: &lt, Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &apiextv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextv1.JSONSchemaProps{"name": {Type: "string", XValidations: apiextv1.ValidationRules{{Rule: "self != ''", Message: "name must not be empty"}}}}}}},
				}},
			}},
		}}},
	}}
	out := Render([]apiextv1.CustomResourceDefinition{crd})
	for _, want := range []string{
		"## Widget\n",
		"`apiVersion: example.io/v1`, cluster-scoped, short names: `wd`.",
		"Widget is a thing.",
		"| `spec.parts` | []object |  |  | maxItems 4; list type map |  |",
		"| `spec.parts[].name` | string |  |  | rule: name must not be empty |  |",
		"| `spec.size` | integer (int32) | yes |  |  | Size \\| in parts. |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered reference lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "spec.parts`") > strings.Index(out, "spec.size`") {
		t.Error("fields are not sorted by path")
	}
}
