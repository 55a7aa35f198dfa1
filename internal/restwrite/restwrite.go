package restwrite

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// Writer writes Service status patches and Events.
type Writer struct {
	core, events rest.Interface
}

// New returns a Writer for cfg. hc is the HTTP client to share (a manager's, so writes use
// its connection); nil makes one from cfg.
func New(cfg *rest.Config, hc *http.Client) (*Writer, error) {
	if hc == nil {
		var err error
		if hc, err = rest.HTTPClientFor(cfg); err != nil {
			return nil, fmt.Errorf("restwrite: http client: %w", err)
		}
	}
	mk := func(gv schema.GroupVersion, apiPath string) (rest.Interface, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = apiPath
		c.ContentType = "application/vnd.kubernetes.protobuf"
		c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		c.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
		return rest.RESTClientForConfigAndClient(c, hc)
	}
	core, err := mk(corev1.SchemeGroupVersion, "/api")
	if err != nil {
		return nil, fmt.Errorf("restwrite: core client: %w", err)
	}
	ev, err := mk(eventsv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, fmt.Errorf("restwrite: events client: %w", err)
	}
	return &Writer{core: core, events: ev}, nil
}

// PatchServiceStatus applies a patch of type pt to the status subresource of a Service.
// Errors are API errors (apierrors.IsNotFound works on them).
func (w *Writer) PatchServiceStatus(ctx context.Context, namespace, name string, pt types.PatchType, data []byte) error {
	return w.core.Patch(pt).Namespace(namespace).Resource("services").Name(name).SubResource("status").
		Body(data).Do(ctx).Error()
}

// CreateEvent creates an events.k8s.io/v1 Event.
func (w *Writer) CreateEvent(ctx context.Context, ev *eventsv1.Event) error {
	return w.events.Post().Namespace(ev.Namespace).Resource("events").Body(ev).Do(ctx).Error()
}
