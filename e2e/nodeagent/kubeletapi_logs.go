package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ContainerRunningChecker is implemented by a Runtime that knows whether a container's
// current instance still runs: `logs -f` then ends when it exits, as with the kubelet.
// Without it, the follow reads the container's state in the Pod's status (at most every
// logStatusPoll). A follow also ends when the pod goes away, the container starts a new
// instance (a new log file) or the client leaves.
type ContainerRunningChecker interface {
	ContainerRunning(podUID types.UID, container string) bool
}

// LogOptions are the containerLogs query parameters the agent honours (those of
// PodLogOptions). sinceSeconds and sinceTime are accepted and ignored: the runtime's log
// files carry no timestamps.
type LogOptions struct {
	Follow     bool
	Previous   bool
	Timestamps bool
	// TailLines, if set, starts the output that many lines before the end.
	TailLines *int64
	// LimitBytes, if set, ends the output after that many bytes.
	LimitBytes *int64
}

// ParseLogOptions reads the containerLogs query parameters.
func ParseLogOptions(q url.Values) (LogOptions, error) {
	var o LogOptions
	for _, b := range []struct {
		name string
		v    *bool
	}{{"follow", &o.Follow}, {"previous", &o.Previous}, {"timestamps", &o.Timestamps}} {
		s := q.Get(b.name)
		if s == "" {
			continue
		}
		v, err := strconv.ParseBool(s)
		if err != nil {
			return LogOptions{}, fmt.Errorf("%s: %w", b.name, err)
		}
		*b.v = v
	}
	for _, n := range []struct {
		name string
		v    **int64
	}{{"tailLines", &o.TailLines}, {"limitBytes", &o.LimitBytes}} {
		s := q.Get(n.name)
		if s == "" {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return LogOptions{}, fmt.Errorf("%s: %w", n.name, err)
		}
		if v < 0 || (n.name == "limitBytes" && v == 0) {
			return LogOptions{}, fmt.Errorf("%s: %d out of range", n.name, v)
		}
		*n.v = &v
	}
	return o, nil
}

// TailOffset returns the offset in r (of size bytes) where its last n lines start. A
// final line without a newline counts as a line; a trailing newline does not start one.
func TailOffset(r io.ReaderAt, size, n int64) (int64, error) {
	if n <= 0 {
		return size, nil
	}
	end := size
	if end > 0 {
		var last [1]byte
		if _, err := r.ReadAt(last[:], end-1); err != nil {
			return 0, err
		}
		if last[0] == '\n' {
			end-- // the trailing newline ends the last line, it does not start one
		}
	}
	buf := make([]byte, 32*1024)
	seen := int64(0)
	for pos := end; pos > 0; {
		chunk := min(int64(len(buf)), pos)
		pos -= chunk
		if _, err := r.ReadAt(buf[:chunk], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := chunk - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			seen++
			if seen == n {
				return pos + i + 1, nil
			}
		}
	}
	return 0, nil
}

// timestampWriter starts every line with the time it is written (RFC 3339, as the
// kubelet's timestamps=true does with the runtime's times).
type timestampWriter struct {
	w         io.Writer
	now       func() time.Time
	midLine   bool
	scratched []byte
}

func (t *timestampWriter) Write(p []byte) (int, error) {
	total := len(p)
	out := t.scratched[:0]
	for len(p) > 0 {
		if !t.midLine {
			out = t.now().UTC().AppendFormat(out, time.RFC3339Nano)
			out = append(out, ' ')
			t.midLine = true
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			out = append(out, p...)
			break
		}
		out = append(out, p[:i+1]...)
		p = p[i+1:]
		t.midLine = false
	}
	t.scratched = out
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return total, nil
}

// errLimitReached ends a log copy at limitBytes.
var errLimitReached = errors.New("limitBytes reached")

// limitWriter passes on at most n bytes, then fails with errLimitReached.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errLimitReached
	}
	short := false
	if int64(len(p)) > l.n {
		p, short = p[:l.n], true
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	if err == nil && short {
		err = errLimitReached
	}
	return n, err
}

// logFollowPoll is how often a followed log is read again at its end, and logStatusPoll
// how often the Pod's status is read for whether the container still runs (when the
// Runtime cannot tell).
const (
	logFollowPoll = 100 * time.Millisecond
	logStatusPoll = 2 * time.Second
)

func (k *KubeletAPI) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := ParseLogOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	uid, ok := k.cfg.Runtime.PodUID(ns, pod)
	if !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s not found", ns, pod), http.StatusNotFound)
		return
	}
	path, err := k.cfg.Runtime.LogPath(uid, container, opts.Previous)
	switch {
	case errors.Is(err, ErrNoLog) && opts.Previous:
		http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod), http.StatusBadRequest)
		return
	case errors.Is(err, ErrNoLog):
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start", container, pod), http.StatusBadRequest)
		return
	case errors.Is(err, ErrPodNotFound), errors.Is(err, ErrContainerNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, fmt.Sprintf("open log of container %q: %v", container, err), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	if opts.TailLines != nil {
		st, err := f.Stat()
		if err == nil {
			var off int64
			if off, err = TailOffset(f, st.Size(), *opts.TailLines); err == nil {
				_, err = f.Seek(off, io.SeekStart)
			}
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("read log of container %q: %v", container, err), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	var out io.Writer = w
	if opts.LimitBytes != nil {
		out = &limitWriter{w: out, n: *opts.LimitBytes}
	}
	if opts.Timestamps {
		out = &timestampWriter{w: out, now: time.Now}
	}
	flusher, _ := w.(http.Flusher)
	follow := opts.Follow && !opts.Previous
	buf := make([]byte, 32*1024)
	ticker := time.NewTicker(logFollowPoll)
	defer ticker.Stop()
	ending := false
	running := k.runningCheck(uid, ns, pod, container, path)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return // limit reached or client gone
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		switch {
		case err == nil:
			continue
		case !errors.Is(err, io.EOF):
			k.log.Warn("read container log", "pod", types.NamespacedName{Namespace: ns, Name: pod}, "container", container, "err", err)
			return
		case !follow || ending:
			return
		}
		// At the end of a followed log: stop once this instance has ended (after one more
		// read for what it wrote last), else wait for more.
		ending = !running(r.Context())
		if ending {
			continue
		}
		select {
		case <-r.Context().Done():
			return
		case <-ticker.C:
		}
	}
}

// runningCheck returns a function telling whether the container instance writing path
// may still write.
func (k *KubeletAPI) runningCheck(uid types.UID, ns, pod, container, path string) func(context.Context) bool {
	var statusAt time.Time
	statusRunning := true
	return func(ctx context.Context) bool {
		if cur, ok := k.cfg.Runtime.PodUID(ns, pod); !ok || cur != uid {
			return false
		}
		if cur, err := k.cfg.Runtime.LogPath(uid, container, false); err != nil || cur != path {
			return false
		}
		if rc, ok := k.cfg.Runtime.(ContainerRunningChecker); ok {
			return rc.ContainerRunning(uid, container)
		}
		if time.Since(statusAt) < logStatusPoll {
			return statusRunning
		}
		statusAt = time.Now()
		p, err := k.cfg.Client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			statusRunning = false
		case err != nil:
			// Keep following; the next poll asks again.
		case p.UID != uid:
			statusRunning = false
		default:
			statusRunning = containerRunningInStatus(p.Status, container)
		}
		return statusRunning
	}
}

// containerRunningInStatus tells whether the Pod's status shows the container running (or
// does not know it yet).
func containerRunningInStatus(st corev1.PodStatus, container string) bool {
	for _, list := range [][]corev1.ContainerStatus{st.ContainerStatuses, st.InitContainerStatuses, st.EphemeralContainerStatuses} {
		for _, cs := range list {
			if cs.Name == container {
				return cs.State.Terminated == nil
			}
		}
	}
	return true
}
