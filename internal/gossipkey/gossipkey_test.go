package gossipkey

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

func TestParse(t *testing.T) {
	k16 := bytes.Repeat([]byte{1}, 16)
	k32 := bytes.Repeat([]byte{2}, 32)
	k24 := bytes.Repeat([]byte{3}, 24)
	for _, tc := range []struct {
		name    string
		data    map[string][]byte
		want    Keys
		wantErr string
	}{
		{name: "primary only", data: map[string][]byte{"key": k32}, want: Keys{Primary: k32}},
		{name: "secondaries sorted by name, other entries ignored",
			data: map[string][]byte{"key": k32, "key.previous": k16, "key.next": k24, "note": []byte("x")},
			want: Keys{Primary: k32, Secondary: [][]byte{k24, k16}}},
		{name: "duplicates dropped", data: map[string][]byte{"key": k32, "key.a": k32, "key.b": k16, "key.c": k16},
			want: Keys{Primary: k32, Secondary: [][]byte{k16}}},
		{name: "missing primary", data: map[string][]byte{"key.next": k32}, wantErr: `no data entry "key"`},
		{name: "short primary", data: map[string][]byte{"key": []byte("short")}, wantErr: `"key" is 5 bytes`},
		{name: "bad secondary", data: map[string][]byte{"key": k32, "key.next": make([]byte, 31)}, wantErr: `"key.next" is 31 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("Parse = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate()
	if len(a) != Size || bytes.Equal(a, b) {
		t.Errorf("Generate gave %d bytes, two calls equal: %v", len(a), bytes.Equal(a, b))
	}
}

// TestEnsureWithCreateOnly runs Ensure as a user allowed only to create Secrets in the
// namespace (the controller's RBAC): it creates the Secret once with a valid key and
// leaves an existing Secret, its key included, alone.
func TestEnsureWithCreateOnly(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	const ns = "loadstone-system"
	admin := env.Client
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "create-secrets", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}}}}))
	must(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "create-secrets", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "create-secrets"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "loadstone:controller"}}}))
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "loadstone:controller", Groups: []string{"system:authenticated"}}
	restricted, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	must(err)

	// Only create: reading is forbidden, so Ensure must not depend on it.
	if err := restricted.Get(ctx, client.ObjectKey{Namespace: ns, Name: DefaultSecretName}, &corev1.Secret{}); err == nil {
		t.Fatal("the restricted user can read Secrets: the test would prove nothing")
	}
	created, err := Ensure(ctx, restricted, ns, DefaultSecretName)
	must(err)
	if !created {
		t.Fatal("Ensure did not create the missing Secret")
	}
	var s corev1.Secret
	must(admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: DefaultSecretName}, &s))
	keys, err := Parse(s.Data)
	must(err)
	if len(keys.Primary) != Size {
		t.Errorf("created key is %d bytes", len(keys.Primary))
	}
	created, err = Ensure(ctx, restricted, ns, DefaultSecretName)
	must(err)
	var again corev1.Secret
	must(admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: DefaultSecretName}, &again))
	if created || !bytes.Equal(again.Data[PrimaryKey], keys.Primary) {
		t.Errorf("second Ensure: created %v, key changed %v", created, !bytes.Equal(again.Data[PrimaryKey], keys.Primary))
	}
	// Ensure fails loudly without the permission.
	if _, err := Ensure(ctx, restricted, "default", DefaultSecretName); err == nil {
		t.Error("Ensure in a namespace without the create permission succeeded")
	}
}
