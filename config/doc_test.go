// Package config_test checks the generated manifests in this directory: the CRDs in
// crd/bases against the real kube-apiserver (every sample accepted, every invalid object
// rejected with its intended message, defaults applied) and against controller-gen (no
// drift from hack/generate.sh).
package config_test
