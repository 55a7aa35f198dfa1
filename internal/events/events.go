package events

import (
	"container/list"
	"context"
	"fmt"
	"hash/maphash"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/reference"
)

// Defaults of Options.
const (
	DefaultQueueSize    = 1024
	DefaultWorkers      = 2
	DefaultRepeatWindow = 10 * time.Minute
	DefaultRepeatCache  = 4096
	// maxNote is the API server's limit on Event.note.
	maxNote = 1024
)

// Writer creates Events (restwrite.Writer does, without decoding the response).
type Writer interface {
	CreateEvent(ctx context.Context, ev *eventsv1.Event) error
}

// Options configure a Recorder.
type Options struct {
	Writer Writer
	// Scheme resolves the kind of the objects Events are about.
	Scheme *runtime.Scheme
	// Controller is the reportingController (for example "loadstone-controller");
	// Instance the reportingInstance (default: Controller-hostname). Controller also
	// names the counter: loadstone_controller_events_total for "loadstone-controller".
	Controller, Instance string
	Log                  logr.Logger
	Registerer           prometheus.Registerer
	// QueueSize and Workers size the writer; RepeatWindow and RepeatCache the suppression
	// of exact repeats (zero: the defaults).
	QueueSize, Workers int
	RepeatWindow       time.Duration
	RepeatCache        int
}

// Recorder emits Events. Eventf never blocks; Start runs the writers (it is a
// controller-runtime Runnable that runs on every replica, leader or not).
type Recorder struct {
	opts  Options
	queue chan queued
	m     *metrics
	seed  maphash.Seed

	mu     sync.Mutex
	recent map[repeatKey]*list.Element
	order  *list.List // of *repeatEntry, most recent first
}

// repeatKey identifies an Event for repeat suppression: the regarding object's UID and a
// 64-bit hash of the rest (kind, namespace, name, type, reason, note), so an entry costs
// a few dozen bytes whatever the note's length.
type repeatKey struct {
	uid  types.UID
	hash uint64
}

// repeatEntry is the suppression state of one key. An Event suppresses its repeats from
// the moment it is queued: while it waits (pending), because it says the same, and for
// RepeatWindow after it was written (when). An Event that is dropped or whose write fails
// suppresses nothing afterwards: pending is cleared and when stays what it was.
type repeatEntry struct {
	key     repeatKey
	pending bool
	when    time.Time // EventTime of the last written one; zero if none was
}

type queued struct {
	ev  *eventsv1.Event
	key repeatKey
}

// New returns a Recorder; nothing is written before Start.
func New(opts Options) *Recorder {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.RepeatWindow <= 0 {
		opts.RepeatWindow = DefaultRepeatWindow
	}
	if opts.RepeatCache <= 0 {
		opts.RepeatCache = DefaultRepeatCache
	}
	if opts.Instance == "" {
		host, _ := os.Hostname()
		opts.Instance = opts.Controller + "-" + host
	}
	return &Recorder{opts: opts, queue: make(chan queued, opts.QueueSize), m: newMetrics(opts.Registerer, opts.Controller),
		seed: maphash.MakeSeed(), recent: map[repeatKey]*list.Element{}, order: list.New()}
}

// Eventf queues an Event about regarding (and optionally related), with the note
// formatted from note and args. It has the signature of client-go's events.EventRecorder.
func (r *Recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	ev, err := r.build(time.Now(), regarding, related, eventtype, reason, action, fmt.Sprintf(note, args...))
	if err != nil {
		r.m.results.WithLabelValues("invalid").Inc()
		r.opts.Log.Error(err, "not emitting an Event", "reason", reason)
		return
	}
	k := r.key(ev)
	if !r.claim(k, ev.EventTime.Time) {
		r.m.results.WithLabelValues("repeat").Inc()
		return
	}
	select {
	case r.queue <- queued{ev: ev, key: k}:
	default:
		r.settle(k, time.Time{})
		r.m.results.WithLabelValues("dropped").Inc()
	}
}

func (r *Recorder) build(now time.Time, regarding, related runtime.Object, eventtype, reason, action, note string) (*eventsv1.Event, error) {
	ref, err := reference.GetReference(r.opts.Scheme, regarding)
	if err != nil {
		return nil, fmt.Errorf("reference to the regarding object: %w", err)
	}
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault // Events about cluster-scoped objects live here
	}
	if len(note) > maxNote {
		note = note[:maxNote-3] + "..."
	}
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", ref.Name, now.UnixNano()), Namespace: ns},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: r.opts.Controller,
		ReportingInstance:   r.opts.Instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Note:                note,
		Type:                eventtype,
	}
	if related != nil {
		rel, err := reference.GetReference(r.opts.Scheme, related)
		if err != nil {
			return nil, fmt.Errorf("reference to the related object: %w", err)
		}
		ev.Related = rel
	}
	if eventtype != corev1.EventTypeNormal && eventtype != corev1.EventTypeWarning {
		return nil, fmt.Errorf("event type %q: want Normal or Warning", eventtype)
	}
	return ev, nil
}

func (r *Recorder) key(ev *eventsv1.Event) repeatKey {
	var h maphash.Hash
	h.SetSeed(r.seed)
	for _, f := range []string{ev.Regarding.Kind, ev.Regarding.Namespace, ev.Regarding.Name, ev.Type, ev.Reason, ev.Note} {
		h.WriteString(f)
		h.WriteByte(0)
	}
	return repeatKey{uid: ev.Regarding.UID, hash: h.Sum64()}
}

// claim reports whether an Event with key k, emitted at now, is to be queued: it is not
// when the same Event waits in the queue or was written within RepeatWindow before now.
// A claimed key is pending until settle. The LRU holds at most RepeatCache entries; a
// forgotten key counts as new.
func (r *Recorder) claim(k repeatKey, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.recent[k]; ok {
		e := el.Value.(*repeatEntry)
		if e.pending || (!e.when.IsZero() && now.Sub(e.when) < r.opts.RepeatWindow) {
			return false
		}
		e.pending = true
		r.order.MoveToFront(el)
		return true
	}
	r.recent[k] = r.order.PushFront(&repeatEntry{key: k, pending: true})
	r.trim()
	return true
}

// trim forgets the least recently used keys beyond RepeatCache. Callers hold r.mu.
func (r *Recorder) trim() {
	for r.order.Len() > r.opts.RepeatCache {
		last := r.order.Back()
		delete(r.recent, last.Value.(*repeatEntry).key)
		r.order.Remove(last)
	}
}

// settle ends the pending state of k: written is the EventTime of the Event just written,
// or zero when it was dropped or its write failed, so that its next occurrence is queued.
func (r *Recorder) settle(k repeatKey, written time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.recent[k]
	if !ok {
		if written.IsZero() {
			return
		}
		// Evicted while pending (more than RepeatCache Events since): remember it again.
		el = r.order.PushFront(&repeatEntry{key: k})
		r.recent[k] = el
		r.trim()
	}
	e := el.Value.(*repeatEntry)
	e.pending = false
	if written.IsZero() {
		if e.when.IsZero() {
			delete(r.recent, k)
			r.order.Remove(el)
		}
		return
	}
	e.when = written
}

// NeedLeaderElection: Events are written by whichever replica emits them.
func (r *Recorder) NeedLeaderElection() bool { return false }

// Start writes queued Events until ctx ends.
func (r *Recorder) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range r.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case q := <-r.queue:
					r.write(ctx, q)
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

func (r *Recorder) write(ctx context.Context, q queued) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ev := q.ev
	if err := r.opts.Writer.CreateEvent(ctx, ev); err != nil {
		r.settle(q.key, time.Time{})
		r.m.results.WithLabelValues("error").Inc()
		r.opts.Log.V(1).Info("writing an Event failed", "reason", ev.Reason, "regarding", ev.Regarding.Name, "err", err.Error())
		return
	}
	r.settle(q.key, ev.EventTime.Time)
	r.m.results.WithLabelValues("written").Inc()
}
