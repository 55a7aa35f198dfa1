package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// ContainerAttacher is implemented by a Runtime that can attach to a container's own
// process (`kubectl attach`, `kubectl run -i`): stdin feeds the process's stdin (kept open
// when the pod spec has stdin: true), stdout and stderr receive what it writes from then
// on. Attach returns when the process exits, or when stdin ends and the container's spec
// has stdinOnce, or when ctx ends (detach; the process goes on). Errors wrap
// ErrPodNotFound, ErrContainerNotFound or ErrNotRunning.
type ContainerAttacher interface {
	Attach(ctx context.Context, podUID types.UID, container string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan TerminalSize) error
}

// podUIDFor resolves the request's pod (and checks the {uid} path segment if given),
// answering 404 itself when there is none.
func (k *KubeletAPI) podUIDFor(w http.ResponseWriter, r *http.Request) (types.UID, bool) {
	ns, pod := r.PathValue("namespace"), r.PathValue("pod")
	uid, ok := k.cfg.Runtime.PodUID(ns, pod)
	if want := r.PathValue("uid"); ok && want != "" && types.UID(want) != uid {
		ok = false
	}
	if !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s not found", ns, pod), http.StatusNotFound)
		return "", false
	}
	return uid, true
}

func (k *KubeletAPI) serveExec(w http.ResponseWriter, r *http.Request) {
	uid, ok := k.podUIDFor(w, r)
	if !ok {
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		http.Error(w, "no command", http.StatusBadRequest)
		return
	}
	remotecommand.ServeExec(w, r, streamAdapter{rt: k.cfg.Runtime}, r.PathValue("pod"), string(uid), r.PathValue("container"), cmd, opts,
		k.cfg.StreamIdleTimeout, k.cfg.StreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (k *KubeletAPI) serveAttach(w http.ResponseWriter, r *http.Request) {
	uid, ok := k.podUIDFor(w, r)
	if !ok {
		return
	}
	if _, ok := k.cfg.Runtime.(ContainerAttacher); !ok {
		http.Error(w, "attach is not supported by this node agent's runtime", http.StatusBadRequest)
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeAttach(w, r, streamAdapter{rt: k.cfg.Runtime}, r.PathValue("pod"), string(uid), r.PathValue("container"), opts,
		k.cfg.StreamIdleTimeout, k.cfg.StreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (k *KubeletAPI) servePortForward(w http.ResponseWriter, r *http.Request) {
	uid, ok := k.podUIDFor(w, r)
	if !ok {
		return
	}
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, r, streamAdapter{rt: k.cfg.Runtime}, r.PathValue("pod"), string(uid), opts,
		k.cfg.StreamIdleTimeout, k.cfg.StreamCreationTimeout, portforward.SupportedProtocols)
}

// streamAdapter gives the Runtime the interfaces of cri-streaming's protocol handlers
// (remotecommand.Executor and Attacher, portforward.PortForwarder).
type streamAdapter struct {
	rt Runtime
}

var (
	_ remotecommand.Executor    = streamAdapter{}
	_ remotecommand.Attacher    = streamAdapter{}
	_ portforward.PortForwarder = streamAdapter{}
)

// ExecInContainer runs cmd through the Runtime. A non-zero exit becomes the
// utilexec.ExitError that ServeExec reports as the command's exit code.
func (s streamAdapter) ExecInContainer(ctx context.Context, _, uid, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	err := s.rt.Exec(ctx, types.UID(uid), container, cmd, in, writerOrNil(out), writerOrNil(errw), tty, terminalSizes(ctx, resize))
	return exitCodeError(err)
}

// AttachContainer attaches through the Runtime's ContainerAttacher.
func (s streamAdapter) AttachContainer(ctx context.Context, _, uid, container string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	a, ok := s.rt.(ContainerAttacher)
	if !ok {
		return errors.New("attach is not supported by this node agent's runtime")
	}
	return a.Attach(ctx, types.UID(uid), container, in, writerOrNil(out), writerOrNil(errw), tty, terminalSizes(ctx, resize))
}

// PortForward connects to localhost:port inside the pod's network namespace and copies
// data both ways until the pod's side or the client's closes.
func (s streamAdapter) PortForward(ctx context.Context, _, uid string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	path, err := s.rt.PodNetns(types.UID(uid))
	if err != nil {
		return fmt.Errorf("port-forward to port %d: %w", port, err)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("port-forward to port %d: pod netns: %w", port, err)
	}
	conn, err := dialIn(ctx, ns, "tcp", net.JoinHostPort("localhost", strconv.Itoa(int(port))))
	ns.Close()
	if err != nil {
		return fmt.Errorf("port-forward to port %d in pod netns %s: %w", port, path, err)
	}
	return splice(ctx, conn, stream)
}

// splice copies between conn and stream: the client's data to conn (then a half-close),
// conn's to the client. It returns when conn's side has ended (or ctx), closing conn.
func splice(ctx context.Context, conn net.Conn, stream io.ReadWriter) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(conn, stream)
		if hc, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = hc.CloseWrite()
		}
	})
	_, err := io.Copy(stream, conn)
	_ = conn.Close()
	// The client's copy ends when its stream is closed (by the caller, after we return)
	// or reaches EOF; do not wait for it.
	go wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("port-forward copy: %w", err)
	}
	return nil
}

// writerOrNil turns a nil io.WriteCloser into a nil io.Writer (not a non-nil interface
// holding nil).
func writerOrNil(w io.WriteCloser) io.Writer {
	if w == nil {
		return nil
	}
	return w
}

// terminalSizes converts cri-streaming's resize events to the Runtime's until ctx ends.
func terminalSizes(ctx context.Context, in <-chan remotecommand.TerminalSize) <-chan TerminalSize {
	if in == nil {
		return nil
	}
	out := make(chan TerminalSize)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case sz, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- TerminalSize{Width: sz.Width, Height: sz.Height}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// exitCodeError turns the Runtime's *ExitError into the utilexec.ExitError that the
// remotecommand protocol reports as an exit code.
func exitCodeError(err error) error {
	var ee *ExitError
	if errors.As(err, &ee) {
		return utilexec.CodeExitError{Err: err, Code: ee.Code}
	}
	return err
}
