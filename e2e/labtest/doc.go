// Package labtest holds the end-to-end tests of the lab itself: the Services lesson that
// `make lab` walks through (package lesson, run by TestServicesLesson with every check
// asserted), the router (dynamic BGP, ECMP, BFD) and the e2e framework (the probe loop, node
// stop and restart). All use real traffic through the real kernel, kube-proxy and router.
// They run with `go test -p 1 ./e2e/...` as root; the lab is started once for the package
// by TestMain.
package labtest
