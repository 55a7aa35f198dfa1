// Package netnstest creates network namespaces for kernel tests: a namespace per call, with
// a random suffix so that parallel test binaries never collide, the sysctls every such test
// relies on set explicitly (a new namespace inherits some of its IPv4 defaults from the
// root one), loopback up, and deletion by name when the test ends. Run runs a command and
// fails the test with its output.
package netnstest
