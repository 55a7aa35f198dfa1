// Command crdbounds bounds the schema of every metav1.LabelSelector in the CRD manifests
// that controller-gen wrote, in place: hack/generate.sh runs it right after controller-gen.
//
// Why: controller-gen takes metav1.LabelSelector's schema from apimachinery, which has no
// maxItems, maxProperties or maxLength. Without them the API server estimates the cost of
// any CEL rule that looks inside a selector from the largest possible request, and rejects
// the CRD. The Go types keep metav1.LabelSelector (so code can use
// metav1.LabelSelectorAsSelector); only the published schema gets these bounds, which no
// sensible selector reaches:
//
//	matchLabels:                 at most 32 labels, values at most 63 characters
//	matchExpressions:            at most 16 requirements
//	matchExpressions[].key:      at most 317 characters (253-character prefix, /, 63-character name)
//	matchExpressions[].operator: at most 16 characters
//	matchExpressions[].values:   at most 64 values of at most 63 characters
//
// Usage: go run ./api/internal/crdbounds FILE.yaml...
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

func main() {
	for _, f := range os.Args[1:] {
		if err := boundFile(f); err != nil {
			fmt.Fprintf(os.Stderr, "crdbounds: %s: %v\n", f, err)
			os.Exit(1)
		}
	}
}

func boundFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	walk(doc)
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte("---\n"), out...), 0o644)
}

// walk finds label selector schemas (objects with matchLabels and matchExpressions
// properties) anywhere in v and bounds them.
func walk(v any) {
	switch t := v.(type) {
	case map[string]any:
		if props, ok := t["properties"].(map[string]any); ok {
			ml, okL := props["matchLabels"].(map[string]any)
			me, okE := props["matchExpressions"].(map[string]any)
			if okL && okE {
				boundSelector(ml, me)
			}
		}
		for _, c := range t {
			walk(c)
		}
	case []any:
		for _, c := range t {
			walk(c)
		}
	}
}

func boundSelector(matchLabels, matchExpressions map[string]any) {
	matchLabels["maxProperties"] = 32
	if ap, ok := matchLabels["additionalProperties"].(map[string]any); ok {
		ap["maxLength"] = 63
	}
	matchExpressions["maxItems"] = 16
	items, _ := matchExpressions["items"].(map[string]any)
	props, _ := items["properties"].(map[string]any)
	if key, ok := props["key"].(map[string]any); ok {
		key["maxLength"] = 317
	}
	if op, ok := props["operator"].(map[string]any); ok {
		op["maxLength"] = 16
	}
	if values, ok := props["values"].(map[string]any); ok {
		values["maxItems"] = 64
		if vi, ok := values["items"].(map[string]any); ok {
			vi["maxLength"] = 63
		}
	}
}
