// Package framework is what end-to-end scenarios use to drive the lab (package lab).
//
// A test package starts one lab for all its tests:
//
//	func TestMain(m *testing.M) { os.Exit(framework.Main(m, framework.Options{})) }
//
// and each test attaches to it with Setup(t), which gives clients, a fresh namespace that
// is deleted when the test ends, and helpers to wait for conditions, run traffic from the
// client namespace (or any lab namespace) in-process, measure gaps in service to the
// millisecond with a probe loop, kill or stop processes, cut a node's link, and read FRR's
// routes and BFD state and the kernel's neighbours.
//
// Main removes the lab when the package ends (also on SIGINT/SIGTERM); a killed run's
// leftovers are removed by the next lab's start. LOADSTONE_E2E_KEEP=1 keeps the lab
// running after the tests, for inspection with kubectl. LOADSTONE_LAB_PREBUILT=
// "speaker=/path,controller=/path" runs given binaries instead of building the tree's.
//
// Under `go test -short` Main starts no lab and Setup skips the test with a message saying
// so: these tests need root and a few seconds of set-up.
package framework
