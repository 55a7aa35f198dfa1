package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/types"
)

// TerminalSize is the size of an exec session's terminal in character cells.
type TerminalSize struct {
	Width, Height uint16
}

// Errors of the Runtime methods; match them with errors.Is.
var (
	// ErrPodNotFound: the agent runs no pod with that UID (or namespace and name).
	ErrPodNotFound = errors.New("pod not found on this node")
	// ErrContainerNotFound: the pod has no container of that name.
	ErrContainerNotFound = errors.New("container not found in pod")
	// ErrNotRunning: the container (or, for PodNetns, the pod's network) is not running.
	ErrNotRunning = errors.New("container is not running")
	// ErrNoLog: there is no log of that container instance (e.g. previous=true before the
	// first restart).
	ErrNoLog = errors.New("no log for this container instance")
)

// ExitError is returned by Runtime.Exec when the command ran and exited with a non-zero
// status (Code), or was killed by a signal (Code is 128 + the signal number, as a shell
// reports it).
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.Code)
}

// ExitCode returns e.Code (the interface remotecommand's exit-code errors use).
func (e *ExitError) ExitCode() int { return e.Code }

// Runtime is the container runtime of the agent, as seen by the kubelet API (logs, exec,
// port-forward). *Agent implements it; its methods are safe for concurrent use from any
// goroutine while the agent runs.
type Runtime interface {
	// PodUID returns the UID of the pod namespace/name the agent runs on this node, or
	// false when it runs none of that name.
	PodUID(namespace, name string) (types.UID, bool)

	// LogPath returns the file holding the stdout and stderr of a container of a pod: of
	// its current (or last) instance, or with previous of the instance before it. Lines
	// are written as the program writes them (no CRI timestamp prefix); the file grows
	// while the container runs, so a follower can tail it. Errors wrap ErrPodNotFound,
	// ErrContainerNotFound or ErrNoLog. Containers served by the built-in workload (see
	// docs/nodeagent.md, image catalog) have a log file too, written by the agent.
	LogPath(podUID types.UID, container string, previous bool) (string, error)

	// Exec runs cmd (argv, no shell) in a running container: in its network and mount
	// namespaces, with its user, group, capabilities, environment and working directory,
	// like `kubectl exec`. stdin may be nil (the command then reads EOF); stdout and
	// stderr may be nil (output discarded). With tty the command gets a pseudo-terminal
	// as stdin, stdout and stderr (stderr is unused and may be nil), sized from resize,
	// which may be nil. Exec returns when the command exits (and its output has been
	// copied) or when ctx ends (the command is then killed). A non-zero exit is an
	// *ExitError. Errors before the command runs wrap ErrPodNotFound,
	// ErrContainerNotFound or ErrNotRunning. Containers of the built-in workload have no
	// program to join: Exec runs cmd in the pod's network namespace with the host's file
	// system, as root.
	Exec(ctx context.Context, podUID types.UID, container string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan TerminalSize) error

	// PodNetns returns the path of the pod's network namespace (for example
	// /run/netns/ls-pod-n1-3fa2b1c9; for a hostNetwork pod the node's namespace), where a
	// port-forward connects to localhost:PORT. Errors wrap ErrPodNotFound or ErrNotRunning.
	PodNetns(podUID types.UID) (string, error)
}
