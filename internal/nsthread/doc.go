// Package nsthread runs code on an OS thread switched into another network namespace:
// lock the thread, enter, run, restore. It is the one copy of that dance shared by the
// lab, the node agent, the kernel tests and the e2e framework.
//
// Sockets opened inside the function belong to the namespace for their whole life,
// whichever thread uses them later, so the function may dial or listen and hand the
// socket back. It must not start goroutines that expect to run in the namespace.
// When the thread cannot be moved back it stays locked, and the Go runtime ends it with
// its goroutine, so no other goroutine ever runs in the wrong namespace.
package nsthread
