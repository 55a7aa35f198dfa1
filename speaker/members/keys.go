package members

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// DefaultKeySwitchDelay is how long a speaker accepts a new primary key before it starts
// encrypting with it, and half of how long it keeps accepting a key that left the Secret.
// It covers the time a Secret update takes to reach every speaker: a node that encrypted
// with a key its peers do not have yet would look dead to them.
const DefaultKeySwitchDelay = 5 * time.Second

// keyPlan is what to do to the keyring now.
type keyPlan struct {
	add    [][]byte // install for decryption
	use    []byte   // make primary (nil: keep)
	remove [][]byte // uninstall
	// pending: a primary switch or a removal waits; plan again later.
	pending bool
}

// keyPlanner decides the keyring's changes with time as an input (pure: no I/O, no clock).
// A key wanted for the first time is installed at once; it becomes primary once it has
// been known for delay (or at once when nothing is primary yet); a key no longer wanted is
// uninstalled after 2 × delay, by when every peer that saw the same Secret change up to
// delay later has stopped encrypting with it.
type keyPlanner struct {
	delay   time.Duration
	primary []byte
	wanted  [][]byte // primary first
	seen    map[string]time.Time
	gone    map[string]time.Time
}

func newKeyPlanner(delay time.Duration) *keyPlanner {
	return &keyPlanner{delay: delay, seen: map[string]time.Time{}, gone: map[string]time.Time{}}
}

// want records the desired key set at now.
func (p *keyPlanner) want(now time.Time, primary []byte, secondary [][]byte) {
	p.primary = bytes.Clone(primary)
	p.wanted = [][]byte{p.primary}
	for _, s := range secondary {
		if !containsKey(p.wanted, s) {
			p.wanted = append(p.wanted, bytes.Clone(s))
		}
	}
	for _, k := range p.wanted {
		if _, ok := p.seen[string(k)]; !ok {
			p.seen[string(k)] = now
		}
		delete(p.gone, string(k))
	}
	for k := range p.seen {
		if !containsKey(p.wanted, []byte(k)) {
			delete(p.seen, k)
		}
	}
}

// known marks every wanted key as known long enough (the keys a memberlist starts with).
func (p *keyPlanner) known(now time.Time) {
	for k := range p.seen {
		p.seen[k] = now.Add(-p.delay)
	}
}

// plan returns the changes to a keyring holding installed with primary current.
func (p *keyPlanner) plan(now time.Time, current []byte, installed [][]byte) keyPlan {
	var out keyPlan
	if p.primary == nil {
		return out
	}
	for _, k := range p.wanted {
		if !containsKey(installed, k) {
			out.add = append(out.add, k)
		}
	}
	primary := current
	if !bytes.Equal(current, p.primary) {
		if current == nil || !now.Before(p.seen[string(p.primary)].Add(p.delay)) {
			out.use, primary = p.primary, p.primary
		} else {
			out.pending = true
		}
	}
	for _, k := range installed {
		if containsKey(p.wanted, k) || bytes.Equal(k, primary) {
			continue
		}
		since, ok := p.gone[string(k)]
		if !ok {
			since = now
			p.gone[string(k)] = now
		}
		if now.Before(since.Add(2 * p.delay)) {
			out.pending = true
			continue
		}
		out.remove = append(out.remove, k)
		delete(p.gone, string(k))
	}
	return out
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

// fingerprint names a key in logs without revealing it: the first 4 bytes of its SHA-256.
func fingerprint(k []byte) string {
	s := sha256.Sum256(k)
	return hex.EncodeToString(s[:4])
}
