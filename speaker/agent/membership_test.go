package agent

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/internal/gossipkey"
	"github.com/loadstone-lb/loadstone/internal/testenv"
	"github.com/loadstone-lb/loadstone/internal/testwait"
)

// TestMembershipFollowsTheKeySecret runs the membership runnable against a real API
// server: not ready while the Secret is missing, ready once the controller-style Secret
// exists (memberlist running, nobody else discovered), and a key written into the Secret
// becomes the key gossip is encrypted with, without a restart.
func TestMembershipFollowsTheKeySecret(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	const ns = "loadstone-system"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	a := New(Config{NodeName: "n1"})
	r := a.Membership(MembershipConfig{NodeName: "n1", Secrets: env.Client, Cache: env.Client, Namespace: ns,
		BindAddr: "127.0.0.1", Port: 0, KeySwitchDelay: 200 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	ready := func() (bool, string) {
		err := r.Ready()
		return err == nil, fmt.Sprint(err)
	}
	testwait.For(t, "not ready without the Secret", 20*time.Second, 20*time.Millisecond, func() (bool, string) {
		err := r.Ready()
		return err != nil && strings.Contains(err.Error(), "not found"), fmt.Sprint(err)
	})
	if _, err := gossipkey.Ensure(ctx, env.Client, ns, DefaultSecretName); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "ready once the Secret exists", 30*time.Second, 20*time.Millisecond, ready)

	var s corev1.Secret
	if err := env.Client.Get(ctx, keyOf(ns), &s); err != nil {
		t.Fatal(err)
	}
	newKey := bytes.Repeat([]byte{'r'}, 32)
	s.Data[gossipkey.PrimaryKey] = newKey
	if err := env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the rotated key encrypts", 30*time.Second, 20*time.Millisecond, func() (bool, string) {
		r.mu.Lock()
		m := r.m
		r.mu.Unlock()
		return bytes.Equal(m.PrimaryKey(), newKey), fmt.Sprintf("%d keys installed", len(m.InstalledKeys()))
	})
	// A broken Secret keeps the keys in use (and readiness).
	s.Data[gossipkey.PrimaryKey] = []byte("short")
	if err := env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * keyPollInterval) // at least one read of the broken Secret
	if err := r.Ready(); err != nil || !bytes.Equal(r.m.PrimaryKey(), newKey) {
		t.Errorf("after a broken Secret: ready %v, key kept %v", err, bytes.Equal(r.m.PrimaryKey(), newKey))
	}
}

func keyOf(ns string) client.ObjectKey {
	return client.ObjectKey{Namespace: ns, Name: DefaultSecretName}
}
