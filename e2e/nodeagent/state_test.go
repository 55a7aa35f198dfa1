package nodeagent

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStateStoreRoundTrip(t *testing.T) {
	s := stateStore{dir: filepath.Join(t.TempDir(), "state")}
	st, err := s.Load()
	if err != nil {
		t.Fatalf("Load of missing state: %v", err)
	}
	if len(st.Pods) != 0 {
		t.Fatalf("missing state has pods: %v", st.Pods)
	}
	want := State{
		Node: "ls-node1",
		Last: map[string]netip.Addr{"198.18.1.0/24": netip.MustParseAddr("198.18.1.7")},
		Pods: []PodRecord{
			{UID: "b", Namespace: "default", Name: "web-2", Netns: "ls-pod-n1-bbbb", HostVeth: "lsvb", IPs: []netip.Addr{netip.MustParseAddr("198.18.1.3")}},
			{UID: "a", Namespace: "default", Name: "web-1", Netns: "ls-pod-n1-aaaa", HostVeth: "lsva", IPs: []netip.Addr{netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("2001:db8:1000:1::2")}},
		},
	}
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "netns", "default", "web-1"))
	if err != nil || string(b) != "ls-pod-n1-aaaa\n" {
		t.Errorf("netns file: %q, %v", b, err)
	}
	// Dropping a pod drops its netns file.
	got.Pods = got.Pods[1:]
	if err := s.Save(got); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "netns", "default", "web-1")); !os.IsNotExist(err) {
		t.Errorf("netns file of a removed pod still exists: %v", err)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestStateStoreCorrupt(t *testing.T) {
	s := stateStore{dir: t.TempDir()}
	if err := os.WriteFile(s.file(), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); err == nil {
		t.Fatal("Load of a corrupt state succeeded")
	}
}
