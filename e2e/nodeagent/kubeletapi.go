package nodeagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
)

// KubeletAPIPort is the kubelet's default port: the API server connects to a Node's
// address at status.daemonEndpoints.kubeletEndpoint.Port, or this port when it is unset.
const KubeletAPIPort = 10250

// KubeletAPIConfig configures a KubeletAPI.
type KubeletAPIConfig struct {
	// NodeName is the Node this agent runs (the name in the SubjectAccessReviews).
	NodeName string
	// Runtime runs the pods: logs, exec and port-forward go to it. If it also implements
	// ContainerAttacher, attach works too; if it implements ContainerRunningChecker,
	// `logs -f` ends when the container exits.
	Runtime Runtime
	// CertFile and KeyFile are the serving certificate (with the node's IPs as SANs) and
	// its key, PEM.
	CertFile, KeyFile string
	// ClientCAFile holds the CAs (PEM) whose client certificates are accepted: the API
	// server's kubelet client certificate must be signed by one of them.
	ClientCAFile string
	// Client creates the SubjectAccessReviews that authorize each request, as the
	// kubelet's webhook authorization mode does.
	Client kubernetes.Interface
	// StreamIdleTimeout ends an exec, attach or port-forward session idle this long (4h
	// if zero, the kubelet's default).
	StreamIdleTimeout time.Duration
	// StreamCreationTimeout bounds the wait for a client's streams (30s if zero).
	StreamCreationTimeout time.Duration
	// Logger for structured logs (slog.Default() if nil).
	Logger *slog.Logger
	// Registerer for metrics (none if nil).
	Registerer prometheus.Registerer
}

// KubeletAPI is the part of the kubelet's HTTPS API that the API server calls for
// `kubectl logs`, `exec`, `attach` (and `run -it`) and `port-forward`:
//
//	/containerLogs/{namespace}/{pod}/{container}
//	/exec/{namespace}/{pod}[/{uid}]/{container}
//	/attach/{namespace}/{pod}[/{uid}]/{container}
//	/portForward/{namespace}/{pod}[/{uid}]
//	/healthz
//
// Clients authenticate with a certificate signed by the client CA (CN = user, O =
// groups); each request is authorized by a SubjectAccessReview for the node's
// subresource (see KubeletRequestAttributes). The SPDY and WebSocket stream protocols are
// k8s.io/cri-streaming's.
type KubeletAPI struct {
	cfg     KubeletAPIConfig
	log     *slog.Logger
	tls     *tls.Config
	authz   authorizer
	metrics *kubeletAPIMetrics
	handler http.Handler
}

// NewKubeletAPI loads the certificates and prepares the handlers; nothing listens until
// Serve.
func NewKubeletAPI(cfg KubeletAPIConfig) (*KubeletAPI, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("kubelet API: no node name")
	}
	if cfg.Runtime == nil {
		return nil, errors.New("kubelet API: no runtime")
	}
	if cfg.Client == nil {
		return nil, errors.New("kubelet API: no API client for SubjectAccessReviews")
	}
	if cfg.StreamIdleTimeout <= 0 {
		cfg.StreamIdleTimeout = 4 * time.Hour
	}
	if cfg.StreamCreationTimeout <= 0 {
		cfg.StreamCreationTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("kubelet API: serving certificate: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("kubelet API: client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("kubelet API: no certificate in client CA file %s", cfg.ClientCAFile)
	}
	k := &KubeletAPI{
		cfg: cfg,
		log: cfg.Logger.With("node", cfg.NodeName, "component", "kubelet-api"),
		tls: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			// Like the kubelet: a client without a certificate gets 401, not a failed
			// handshake; a certificate not signed by the CA fails the handshake.
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  pool,
		},
		authz:   newSARAuthorizer(cfg.Client, cfg.NodeName),
		metrics: newKubeletAPIMetrics(cfg.Registerer),
	}
	k.handler = k.routes()
	return k, nil
}

// Handler returns the authenticated and authorized handler (requests must come over TLS
// with a verified client certificate).
func (k *KubeletAPI) Handler() http.Handler { return k.handler }

// Serve serves the API over TLS on ln until ctx ends; ln is closed on return. Open
// streaming sessions are not cut when ctx ends.
func (k *KubeletAPI) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           k.handler,
		TLSConfig:         k.tls,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(k.log.Handler(), slog.LevelDebug),
	}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	k.log.Info("kubelet API serving", "addr", ln.Addr().String())
	err := srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) && ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("kubelet API: %w", err)
}

// ListenAndServe listens on addr (e.g. ":10250", in the calling process's network
// namespace) and serves until ctx ends.
func (k *KubeletAPI) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("kubelet API: %w", err)
	}
	return k.Serve(ctx, ln)
}

// KubeletAPIFlags are the node agent command's flags for the kubelet API; the API is on
// when a serving certificate is given.
type KubeletAPIFlags struct {
	Addr, CertFile, KeyFile, ClientCAFile string
}

// Register adds the flags to fs (--kubelet-api-addr, --kubelet-cert, --kubelet-key,
// --kubelet-client-ca).
func (f *KubeletAPIFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Addr, "kubelet-api-addr", fmt.Sprintf(":%d", KubeletAPIPort), "listen address of the kubelet API (logs, exec, attach, port-forward)")
	fs.StringVar(&f.CertFile, "kubelet-cert", "", "serving certificate of the kubelet API (PEM); the API is off without it")
	fs.StringVar(&f.KeyFile, "kubelet-key", "", "key of --kubelet-cert (PEM)")
	fs.StringVar(&f.ClientCAFile, "kubelet-client-ca", "", "CA bundle (PEM) that signs the API server's kubelet client certificate")
}

// Enabled tells whether the flags turn the API on.
func (f *KubeletAPIFlags) Enabled() bool { return f.CertFile != "" }

// Config returns a KubeletAPIConfig with the flags' files and the given parts.
func (f *KubeletAPIFlags) Config(node string, rt Runtime, client kubernetes.Interface, log *slog.Logger, reg prometheus.Registerer) KubeletAPIConfig {
	return KubeletAPIConfig{
		NodeName: node, Runtime: rt, Client: client,
		CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: f.ClientCAFile,
		Logger: log, Registerer: reg,
	}
}

func (k *KubeletAPI) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.serveLogs)
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", k.serveExec)
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{uid}/{container}", k.serveExec)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", k.serveAttach)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{uid}/{container}", k.serveAttach)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}", k.servePortForward)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}/{uid}", k.servePortForward)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	return k.authenticated(mux)
}

// authenticated lets through requests whose client certificate is verified and whose user
// may use the node's subresource for the path.
func (k *KubeletAPI) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := kubeletEndpoint(r.URL.Path)
		u, ok := userFromTLS(r.TLS)
		if !ok {
			k.metrics.requests.WithLabelValues(endpoint, "unauthenticated").Inc()
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		attrs := KubeletRequestAttributes(r.Method, r.URL.Path)
		allowed, reason, err := k.authz.authorize(r.Context(), u, attrs)
		if err != nil {
			k.metrics.requests.WithLabelValues(endpoint, "authz_error").Inc()
			k.log.Warn("authorization failed", "user", u.Name, "path", r.URL.Path, "err", err)
			http.Error(w, "Authorization error", http.StatusInternalServerError)
			return
		}
		if !allowed {
			k.metrics.requests.WithLabelValues(endpoint, "forbidden").Inc()
			msg := fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource=%s)", u.Name, attrs.Verb, attrs.Subresource)
			if reason != "" {
				msg += ": " + reason
			}
			k.log.Info("request forbidden", "user", u.Name, "path", r.URL.Path, "verb", attrs.Verb, "subresource", attrs.Subresource)
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		k.metrics.requests.WithLabelValues(endpoint, "accepted").Inc()
		k.log.Debug("request", "user", u.Name, "method", r.Method, "path", r.URL.Path)
		next.ServeHTTP(w, r)
	})
}
