package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// stateFile is the record, in the lab directory, of everything a run created.
const stateFile = "state.json"

// markerFile marks a directory as a lab directory: Up only wipes a directory that has it
// (or is empty), so a mistyped LOADSTONE_LAB_DIR never deletes someone's files.
const markerFile = ".loadstone-lab"

// Proc is a process the lab started.
type Proc struct {
	// Name is the role, e.g. "kube-apiserver" or "speaker-ls-node1".
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// StartTime is field 22 of /proc/PID/stat (clock ticks since boot): together with the
	// binary it tells a recorded process from an unrelated one that reused the PID.
	StartTime uint64 `json:"startTime"`
	// Netns is the namespace it runs in ("" for the root namespace).
	Netns string   `json:"netns,omitempty"`
	Argv  []string `json:"argv"`
	Log   string   `json:"log"`
}

// State is what a lab run created, saved after every change.
type State struct {
	Nodes int      `json:"nodes"`
	Netns []string `json:"netns"`
	Links []string `json:"links"`
	Procs []Proc   `json:"procs"`
}

// stateStore guards State and writes it to disk on every change.
type stateStore struct {
	mu   sync.Mutex
	path string
	s    State
}

func loadState(dir string) (State, error) {
	var s State
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("parse %s: %w", filepath.Join(dir, stateFile), err)
	}
	return s, nil
}

func (st *stateStore) update(f func(*State)) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(&st.s)
	b, err := json.MarshalIndent(st.s, "", "  ")
	if err != nil {
		return err
	}
	tmp := st.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, st.path)
}

func (st *stateStore) snapshot() State {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	s.Netns = slices.Clone(s.Netns)
	s.Links = slices.Clone(s.Links)
	s.Procs = slices.Clone(s.Procs)
	return s
}

func (st *stateStore) addNetns(name string) error {
	return st.update(func(s *State) {
		if !slices.Contains(s.Netns, name) {
			s.Netns = append(s.Netns, name)
		}
	})
}

func (st *stateStore) addProc(p Proc) error {
	return st.update(func(s *State) { s.Procs = append(s.Procs, p) })
}

func (st *stateStore) removeProc(pid int) error {
	return st.update(func(s *State) {
		s.Procs = slices.DeleteFunc(s.Procs, func(p Proc) bool { return p.PID == pid })
	})
}
