package nodeagent

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// kubeletUser is who a verified client certificate names.
type kubeletUser struct {
	Name   string
	Groups []string
}

// userFromTLS returns the user of a verified client certificate: its CommonName, and its
// Organizations plus system:authenticated as groups (the API server's x509 rule).
func userFromTLS(st *tls.ConnectionState) (kubeletUser, bool) {
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return kubeletUser{}, false
	}
	leaf := st.VerifiedChains[0][0]
	if leaf.Subject.CommonName == "" {
		return kubeletUser{}, false
	}
	groups := slices.Clone(leaf.Subject.Organization)
	if !slices.Contains(groups, "system:authenticated") {
		groups = append(groups, "system:authenticated")
	}
	return kubeletUser{Name: leaf.Subject.CommonName, Groups: groups}, true
}

// KubeletAttributes are what a kubelet API request is authorized as: a verb on the Node's
// subresource.
type KubeletAttributes struct {
	Verb        string
	Subresource string
}

// KubeletRequestAttributes maps a kubelet API request to the authorization attributes the
// kubelet uses: the verb from the HTTP method (POST create, GET and HEAD get, PUT update,
// PATCH patch, DELETE delete) and the subresource from the path (/stats stats, /metrics
// metrics, /logs log, /spec spec, /checkpoint checkpoint, anything else — exec, attach,
// portForward, containerLogs, healthz — proxy).
func KubeletRequestAttributes(method, path string) KubeletAttributes {
	verb := strings.ToLower(method)
	switch method {
	case "POST":
		verb = "create"
	case "GET", "HEAD":
		verb = "get"
	case "PUT":
		verb = "update"
	case "PATCH":
		verb = "patch"
	case "DELETE":
		verb = "delete"
	}
	sub := "proxy"
	for _, p := range []struct{ prefix, sub string }{
		{"/stats", "stats"}, {"/metrics", "metrics"}, {"/logs", "log"}, {"/spec", "spec"}, {"/checkpoint", "checkpoint"},
	} {
		if path == p.prefix || strings.HasPrefix(path, p.prefix+"/") {
			sub = p.sub
			break
		}
	}
	return KubeletAttributes{Verb: verb, Subresource: sub}
}

// kubeletEndpoint names a request's endpoint for metrics (the first path segment of the
// routes served, "other" for anything else).
func kubeletEndpoint(path string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch first {
	case "containerLogs", "exec", "attach", "portForward", "healthz":
		return first
	}
	return "other"
}

type authorizer interface {
	authorize(ctx context.Context, u kubeletUser, attrs KubeletAttributes) (allowed bool, reason string, err error)
}

// sarAuthorizer asks the API server with a SubjectAccessReview whether the user may use
// the node's subresource, caching answers as the kubelet does (allowed 5 minutes, denied
// 30 seconds).
type sarAuthorizer struct {
	client kubernetes.Interface
	node   string
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]sarAnswer
}

type sarAnswer struct {
	allowed bool
	reason  string
	expires time.Time
}

func newSARAuthorizer(client kubernetes.Interface, node string) *sarAuthorizer {
	return &sarAuthorizer{client: client, node: node, now: time.Now, cache: map[string]sarAnswer{}}
}

func (s *sarAuthorizer) authorize(ctx context.Context, u kubeletUser, attrs KubeletAttributes) (bool, string, error) {
	key := u.Name + "\x00" + strings.Join(u.Groups, "\x01") + "\x00" + attrs.Verb + "\x00" + attrs.Subresource
	now := s.now()
	s.mu.Lock()
	if a, ok := s.cache[key]; ok && now.Before(a.expires) {
		s.mu.Unlock()
		return a.allowed, a.reason, nil
	}
	s.mu.Unlock()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   u.Name,
		Groups: u.Groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: attrs.Verb, Resource: "nodes", Subresource: attrs.Subresource, Name: s.node,
		},
	}}
	got, err := s.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("subject access review: %w", err)
	}
	a := sarAnswer{allowed: got.Status.Allowed && !got.Status.Denied, reason: got.Status.Reason}
	ttl := 30 * time.Second
	if a.allowed {
		ttl = 5 * time.Minute
	}
	a.expires = now.Add(ttl)
	s.mu.Lock()
	for k, old := range s.cache {
		if !now.Before(old.expires) {
			delete(s.cache, k)
		}
	}
	s.cache[key] = a
	s.mu.Unlock()
	return a.allowed, a.reason, nil
}
