package gossipkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// DefaultSecretName is the Secret's name unless configured otherwise (the chart's
	// default too).
	DefaultSecretName = "loadstone-memberlist"
	// PrimaryKey is the data entry holding the key speakers encrypt with.
	PrimaryKey = "key"
	// SecondaryPrefix starts the names of the data entries holding keys that are accepted
	// for decryption only.
	SecondaryPrefix = "key."
	// Size is the length of a generated key: 32 bytes, AES-256-GCM.
	Size = 32
)

// Keys is the key set a Secret holds.
type Keys struct {
	// Primary encrypts (and decrypts).
	Primary []byte
	// Secondary are accepted for decryption only, sorted by data entry name, without
	// duplicates of Primary or of each other.
	Secondary [][]byte
}

// Equal reports whether k and o hold the same keys.
func (k Keys) Equal(o Keys) bool {
	if !bytes.Equal(k.Primary, o.Primary) || len(k.Secondary) != len(o.Secondary) {
		return false
	}
	for i := range k.Secondary {
		if !bytes.Equal(k.Secondary[i], o.Secondary[i]) {
			return false
		}
	}
	return true
}

// ValidLength reports whether n is a usable AES key length (16, 24 or 32 bytes).
func ValidLength(n int) bool { return n == 16 || n == 24 || n == 32 }

// Parse reads the keys from a Secret's data. The primary key must be present and valid;
// an invalid secondary key is an error too (a typo must not go unnoticed until rotation).
func Parse(data map[string][]byte) (Keys, error) {
	p, ok := data[PrimaryKey]
	if !ok {
		return Keys{}, fmt.Errorf("no data entry %q", PrimaryKey)
	}
	if !ValidLength(len(p)) {
		return Keys{}, fmt.Errorf("data entry %q is %d bytes, want 16, 24 or 32", PrimaryKey, len(p))
	}
	k := Keys{Primary: bytes.Clone(p)}
	var names []string
	for n := range data {
		if strings.HasPrefix(n, SecondaryPrefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		v := data[n]
		if !ValidLength(len(v)) {
			return Keys{}, fmt.Errorf("data entry %q is %d bytes, want 16, 24 or 32", n, len(v))
		}
		dup := bytes.Equal(v, p)
		for _, s := range k.Secondary {
			dup = dup || bytes.Equal(s, v)
		}
		if !dup {
			k.Secondary = append(k.Secondary, bytes.Clone(v))
		}
	}
	return k, nil
}

// Generate returns a new random key of Size bytes.
func Generate() ([]byte, error) {
	b := make([]byte, Size)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random key: %w", err)
	}
	return b, nil
}

// NewSecret returns a Secret holding key as its primary key.
func NewSecret(namespace, name string, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name,
			Labels: map[string]string{"app.kubernetes.io/name": "loadstone", "app.kubernetes.io/managed-by": "loadstone-controller"},
			Annotations: map[string]string{
				"loadstone.io/description": "memberlist gossip key of the Loadstone speakers, created by the controller; see docs/security.md to rotate it",
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{PrimaryKey: key},
	}
}

// Ensure creates the Secret with a new random key unless it exists. It reports whether
// it created it. It never reads or changes an existing Secret.
func Ensure(ctx context.Context, c client.Writer, namespace, name string) (bool, error) {
	key, err := Generate()
	if err != nil {
		return false, err
	}
	err = c.Create(ctx, NewSecret(namespace, name, key))
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil
	}
	return false, fmt.Errorf("creating secret %s/%s: %w", namespace, name, err)
}

// Ensurer is a manager runnable that calls Ensure at start and then every Interval, so a
// deleted Secret comes back. It runs on every controller replica (no leader election):
// the speakers wait for the key, and a create is atomic (one replica wins, the other sees
// AlreadyExists).
type Ensurer struct {
	Client    client.Writer
	Logger    *slog.Logger
	Namespace string
	Name      string
	// Interval between checks (default 1 minute); failed attempts retry sooner (from 1 s,
	// doubling up to Interval).
	Interval time.Duration
}

// NeedLeaderElection is false: every replica ensures the Secret.
func (e *Ensurer) NeedLeaderElection() bool { return false }

// Start runs until ctx ends.
func (e *Ensurer) Start(ctx context.Context) error {
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := e.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	retry := time.Second
	for {
		wait := interval
		created, err := Ensure(ctx, e.Client, e.Namespace, e.Name)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil //nolint:nilerr // stopping: the failed create is the cancelled context
		case err != nil:
			log.Error("memberlist key Secret: create failed; speakers wait for it", "namespace", e.Namespace, "name", e.Name, "err", err)
			wait, retry = retry, min(2*retry, interval)
		case created:
			log.Info("memberlist key Secret created with a new random key", "namespace", e.Namespace, "name", e.Name)
			retry = time.Second
		default:
			retry = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
