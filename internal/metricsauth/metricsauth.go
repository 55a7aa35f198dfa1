package metricsauth

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

const (
	allowTTL   = time.Minute
	denyTTL    = 10 * time.Second
	maxEntries = 1024
)

// FilterProvider is a metricsserver.Options.FilterProvider. A nil hc: one made from cfg.
func FilterProvider(cfg *rest.Config, hc *http.Client) (metricsserver.Filter, error) {
	if hc == nil {
		var err error
		if hc, err = rest.HTTPClientFor(cfg); err != nil {
			return nil, fmt.Errorf("metricsauth: %w", err)
		}
	}
	authn, err := authnclient.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("metricsauth: %w", err)
	}
	authz, err := authzclient.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("metricsauth: %w", err)
	}
	return Filter(authn, authz), nil
}

// Filter returns a filter that authenticates with authn and authorizes with authz.
func Filter(authn authnclient.TokenReviewsGetter, authz authzclient.SubjectAccessReviewsGetter) metricsserver.Filter {
	g := &guard{authn: authn, authz: authz, cache: map[[32]byte]decision{}, now: time.Now}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code, why := g.check(r)
			if code != http.StatusOK {
				log.V(1).Info("metrics request refused", "code", code, "reason", why, "path", r.URL.Path)
				http.Error(w, why, code)
				return
			}
			next.ServeHTTP(w, r)
		}), nil
	}
}

type decision struct {
	code    int
	why     string
	expires time.Time
}

type guard struct {
	authn authnclient.TokenReviewsGetter
	authz authzclient.SubjectAccessReviewsGetter
	now   func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]decision
}

func (g *guard) check(r *http.Request) (int, string) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return http.StatusUnauthorized, "Unauthorized: a bearer token is required"
	}
	verb := strings.ToLower(r.Method)
	key := sha256.Sum256([]byte(verb + "\x00" + r.URL.Path + "\x00" + token))
	now := g.now()
	g.mu.Lock()
	d, ok := g.cache[key]
	g.mu.Unlock()
	if ok && now.Before(d.expires) {
		return d.code, d.why
	}
	code, why := g.review(r, token, verb)
	ttl := denyTTL
	if code == http.StatusOK {
		ttl = allowTTL
	}
	if code != http.StatusInternalServerError {
		g.mu.Lock()
		if len(g.cache) >= maxEntries {
			clear(g.cache)
		}
		g.cache[key] = decision{code: code, why: why, expires: now.Add(ttl)}
		g.mu.Unlock()
	}
	return code, why
}

func (g *guard) review(r *http.Request, token, verb string) (int, string) {
	tr, err := g.authn.TokenReviews().Create(r.Context(), &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return http.StatusInternalServerError, "authentication failed: " + err.Error()
	}
	if !tr.Status.Authenticated {
		return http.StatusUnauthorized, "Unauthorized"
	}
	u := tr.Status.User
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar, err := g.authz.SubjectAccessReviews().Create(r.Context(), &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
		NonResourceAttributes: &authzv1.NonResourceAttributes{Path: r.URL.Path, Verb: verb},
	}}, metav1.CreateOptions{})
	if err != nil {
		return http.StatusInternalServerError, "authorization failed: " + err.Error()
	}
	if !sar.Status.Allowed {
		return http.StatusForbidden, fmt.Sprintf("Forbidden: %s may not %s %s", u.Username, verb, r.URL.Path)
	}
	return http.StatusOK, ""
}
