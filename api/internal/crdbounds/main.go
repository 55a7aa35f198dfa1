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
