// Package testenv starts the real kube-apiserver and etcd (built from source by
// hack/k8s-binaries.sh) for tests, with Loadstone's generated CRDs installed.
//
// The binaries are found through KUBEBUILDER_ASSETS, which the Makefile sets; when it is
// unset, the default cache directory of hack/k8s-binaries.sh is tried. There is no download.
package testenv
