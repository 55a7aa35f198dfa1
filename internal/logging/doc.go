// Package logging is the one way Loadstone's binaries log and report their version.
//
// Setup builds a single slog JSON handler writing to stderr (or any writer) and installs it
// as the logger of everything else in the process: controller-runtime (ctrl.SetLogger),
// klog, through which client-go, informers and leader election log, and its contextual
// logger, and slog's default logger, through which package log writes. So one process writes one stream of JSON records, never klog's text lines
// between them. The level comes from the --log-level flag (debug, info, warn, error);
// AddFlags registers it, the speaker's and controller's old -v (= debug) and --version.
//
// klog's legacy verbosity (klog.V(n) on the global functions) stays at 0: those lines are
// client-go's request traces, and the records klog passes on carry no level of their own
// (a klog warning becomes an info record, an error an error record). Contextual callers
// (klog.FromContext(ctx).V(n)) reach the handler directly at level -n, so debug shows
// V(1)..V(4).
//
// The version and commit are strings set at link time (-ldflags "-X
// github.com/loadstone-lb/loadstone/internal/logging.version=v1.2.3", as `make build`
// does); without a commit, the revision Go stamped into the binary is used (none under
// -buildvcs=false); the Go version comes from the runtime. Both binaries log them at
// start and print them on --version.
package logging
