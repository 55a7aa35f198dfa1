package nodeagent

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestNetnsName(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		node   string
		uid    types.UID
		want   string // prefix of the result, before the UID hash
	}{
		{name: "lab node", prefix: DefaultNetnsPrefix, node: "ls-node1", uid: "a", want: "ls-pod-n1-"},
		{name: "two digits", prefix: DefaultNetnsPrefix, node: "ls-node12", uid: "a", want: "ls-pod-n12-"},
		{name: "no digits", prefix: "lst-x-", node: "worker", uid: "a", want: "lst-x-h"},
		{name: "long digit run is hashed", prefix: DefaultNetnsPrefix, node: "node123456", uid: "a", want: "ls-pod-h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NetnsName(tc.prefix, tc.node, tc.uid)
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("NetnsName = %q, want prefix %q", got, tc.want)
			}
			if again := NetnsName(tc.prefix, tc.node, tc.uid); again != got {
				t.Fatalf("not deterministic: %q then %q", got, again)
			}
			if other := NetnsName(tc.prefix, tc.node, tc.uid+"x"); other == got {
				t.Fatalf("different UIDs gave the same name %q", got)
			}
		})
	}
}

func TestHostVethName(t *testing.T) {
	for _, uid := range []types.UID{"", "1", "0b4f2c3e-8a9d-4c4e-9f1a-0123456789ab"} {
		got := HostVethName(uid)
		if !validIfName(got) {
			t.Errorf("HostVethName(%q) = %q: not a valid interface name", uid, got)
		}
		if !strings.HasPrefix(got, "lsv") {
			t.Errorf("HostVethName(%q) = %q: want prefix lsv", uid, got)
		}
	}
	if HostVethName("a") == HostVethName("b") {
		t.Error("different UIDs gave the same veth name")
	}
}

func TestValidIfName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"eth0", true}, {"", false}, {"abcdefghijklmno", true}, {"abcdefghijklmnop", false}, {"a/b", false}, {"a b", false},
	}
	for _, tc := range tests {
		if got := validIfName(tc.in); got != tc.want {
			t.Errorf("validIfName(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
