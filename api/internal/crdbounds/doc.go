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
