package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// PodRecord is what the agent persists about a pod it runs, so a restarted agent re-adopts
// the pod with the same namespace and IPs, or cleans up after it.
type PodRecord struct {
	UID       types.UID    `json:"uid"`
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	Netns     string       `json:"netns"`
	HostVeth  string       `json:"hostVeth"`
	IPs       []netip.Addr `json:"ips"`
	// HostNetwork pods have no namespace, veth or IPs of their own.
	HostNetwork bool `json:"hostNetwork,omitempty"`
}

// Key returns the pod's namespace and name.
func (r PodRecord) Key() types.NamespacedName {
	return types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
}

// State is the content of the state file.
type State struct {
	Node string `json:"node"`
	// Last holds the last address allocated from each pod CIDR (keyed by the CIDR), so
	// allocation resumes where it stopped.
	Last map[string]netip.Addr `json:"last,omitempty"`
	Pods []PodRecord           `json:"pods"`
}

// stateStore keeps State in dir/state.json (written atomically), plus, for people and
// scripts, dir/netns/NAMESPACE/NAME holding each pod's netns name.
type stateStore struct {
	dir string
}

func (s stateStore) file() string { return filepath.Join(s.dir, "state.json") }

// Load reads the state; a missing file is an empty state.
func (s stateStore) Load() (State, error) {
	b, err := os.ReadFile(s.file())
	if errors.Is(err, os.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("parse state %s: %w", s.file(), err)
	}
	return st, nil
}

// Save writes the state atomically and refreshes the per-pod netns files.
func (s stateStore) Save(st State) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	slices.SortFunc(st.Pods, func(a, b PodRecord) int {
		return strings.Compare(a.Namespace+"/"+a.Name+"/"+string(a.UID), b.Namespace+"/"+b.Name+"/"+string(b.UID))
	})
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.file()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state: %w", err)
	}
	return s.writeNetnsFiles(st)
}

func (s stateStore) writeNetnsFiles(st State) error {
	root := filepath.Join(s.dir, "netns")
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("netns files: %w", err)
	}
	for _, p := range st.Pods {
		dir := filepath.Join(root, p.Namespace)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("netns files: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, p.Name), []byte(p.Netns+"\n"), 0o644); err != nil {
			return fmt.Errorf("netns files: %w", err)
		}
	}
	return nil
}

// Remove deletes the state file and the netns files.
func (s stateStore) Remove() error {
	return errors.Join(os.RemoveAll(filepath.Join(s.dir, "netns")), ignoreNotExist(os.Remove(s.file())))
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
