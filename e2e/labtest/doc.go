// Package labtest holds the end-to-end tests of the lab's Services lesson: ClusterIP,
// scaling, NodePort (IPv4 and IPv6) and LoadBalancer, each with real traffic through the
// real kernel, kube-proxy and router. They run with `go test -p 1 ./e2e/...` as root; the
// lab is started once for the package by TestMain.
package labtest
