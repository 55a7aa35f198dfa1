package members

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func TestKeyPlanner(t *testing.T) {
	a, b, c := bytes.Repeat([]byte{'a'}, 32), bytes.Repeat([]byte{'b'}, 32), bytes.Repeat([]byte{'c'}, 16)
	t0 := time.Unix(1000, 0)
	d := 5 * time.Second
	p := newKeyPlanner(d)

	// Start: the initial keys are installed and used at once.
	p.want(t0, a, nil)
	p.known(t0)
	if got := p.plan(t0, nil, nil); !bytes.Equal(got.use, a) || len(got.add) != 1 || got.pending {
		t.Fatalf("start: %+v", got)
	}
	// A new primary: accepted at once, used only after d; the old one stays until then.
	p.want(t0.Add(time.Second), b, nil)
	got := p.plan(t0.Add(time.Second), a, [][]byte{a})
	if len(got.add) != 1 || !bytes.Equal(got.add[0], b) || got.use != nil || len(got.remove) != 0 || !got.pending {
		t.Fatalf("new primary, before the delay: %+v", got)
	}
	got = p.plan(t0.Add(time.Second+d-time.Millisecond), a, [][]byte{a, b})
	if got.use != nil || len(got.remove) != 0 || !got.pending {
		t.Fatalf("just before the delay: %+v", got)
	}
	switchAt := t0.Add(time.Second + d)
	got = p.plan(switchAt, a, [][]byte{a, b})
	if !bytes.Equal(got.use, b) || len(got.remove) != 0 || !got.pending {
		t.Fatalf("at the delay: %+v", got)
	}
	// The old primary is kept for 2d after it stopped being used, then removed.
	got = p.plan(switchAt.Add(2*d-time.Millisecond), b, [][]byte{b, a})
	if len(got.remove) != 0 || !got.pending {
		t.Fatalf("old key before 2d: %+v", got)
	}
	got = p.plan(switchAt.Add(2*d), b, [][]byte{b, a})
	if len(got.remove) != 1 || !bytes.Equal(got.remove[0], a) || got.pending {
		t.Fatalf("old key after 2d: %+v", got)
	}
	if got := p.plan(switchAt.Add(3*d), b, [][]byte{b}); len(got.add)+len(got.remove) != 0 || got.use != nil || got.pending {
		t.Fatalf("settled: %+v", got)
	}

	// Staged rotation: c arrives as a secondary, is promoted after it has been known for
	// d: then it is used at once.
	t1 := switchAt.Add(time.Minute)
	p.want(t1, b, [][]byte{c})
	if got := p.plan(t1, b, [][]byte{b}); len(got.add) != 1 || !bytes.Equal(got.add[0], c) || got.use != nil {
		t.Fatalf("secondary added: %+v", got)
	}
	p.want(t1.Add(time.Minute), c, [][]byte{b})
	if got := p.plan(t1.Add(time.Minute), b, [][]byte{b, c}); !bytes.Equal(got.use, c) || len(got.remove) != 0 {
		t.Fatalf("promoted secondary: %+v", got)
	}
	// A key that comes back before its removal is simply kept.
	p.want(t1.Add(2*time.Minute), c, nil)
	p.plan(t1.Add(2*time.Minute), c, [][]byte{c, b})
	p.want(t1.Add(2*time.Minute+time.Second), c, [][]byte{b})
	if got := p.plan(t1.Add(3*time.Minute), c, [][]byte{c, b}); len(got.remove) != 0 {
		t.Fatalf("key wanted again was removed: %+v", got)
	}
}

// rotationCluster starts n1..n3 with testKey and the given switch delay, joined.
func rotationCluster(t *testing.T, delay time.Duration) []*Members {
	b := &book{addrs: map[string]string{}}
	var ms []*Members
	for _, n := range []string{"n1", "n2", "n3"} {
		ms = append(ms, startWith(t, b, n, testKey, nil, func(c *Config) { c.KeySwitchDelay = delay }))
	}
	for _, m := range ms {
		waitFor(t, m.cfg.NodeName+" sees 3 alive", func() (bool, string) {
			a := m.Alive()
			return len(a) == 3, fmt.Sprint(a)
		})
	}
	return ms
}

// TestKeyMismatchLooksLikeDeath is the control for TestKeyRotationKeepsMembers: a node
// that does not have the key its peers encrypt with is declared dead by them. So the
// rotation test's "nobody died" means something.
func TestKeyMismatchLooksLikeDeath(t *testing.T) {
	ms := rotationCluster(t, time.Nanosecond) // switch at once
	newKey := bytes.Repeat([]byte{'n'}, 32)
	for _, m := range ms[:2] {
		if err := m.SetKeys(newKey, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "n1 sees n3, which lacks the new key, dead", func() (bool, string) {
		st := ms[0].All()["n3"].State
		return st == StateDead, st.String()
	})
}

// TestKeyRotationKeepsMembers rotates the key the way a Secret update reaches speakers:
// one after the other, the last one well after the others. Nobody is seen dead or
// rejoining, every node ends up encrypting with the new key and holding only it, and a
// node started with only the new key joins them.
func TestKeyRotationKeepsMembers(t *testing.T) {
	ms := rotationCluster(t, 2*time.Second)
	before := make([]uint64, len(ms))
	for i, m := range ms {
		before[i] = m.Arrivals()
	}
	newKey := bytes.Repeat([]byte{'n'}, 32)
	for _, m := range ms[:2] {
		if err := m.SetKeys(newKey, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Longer than a failure detection (probe 80 ms + suspicion 160 ms; the control test
	// shows n3 declared dead in that situation), shorter than the switch delay.
	time.Sleep(600 * time.Millisecond)
	if err := ms[2].SetKeys(newKey, nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		waitFor(t, m.cfg.NodeName+" encrypts with the new key and holds only it", func() (bool, string) {
			keys := m.InstalledKeys()
			return bytes.Equal(m.PrimaryKey(), newKey) && len(keys) == 1, fmt.Sprintf("%d keys installed", len(keys))
		})
	}
	for i, m := range ms {
		if got := m.Arrivals(); got != before[i] {
			t.Errorf("%s saw %d arrivals during the rotation: a peer was dead or gone in between", m.cfg.NodeName, got-before[i])
		}
		for name, st := range m.All() {
			if st.State != StateAlive {
				t.Errorf("%s sees %s %s", m.cfg.NodeName, name, st.State)
			}
		}
	}
	b := &book{addrs: map[string]string{}}
	for _, m := range ms {
		b.set(m.cfg.NodeName, m.Port())
	}
	n4 := start(t, b, "n4", newKey, nil)
	waitFor(t, "n4 (new key only) sees 4 alive", func() (bool, string) {
		a := n4.Alive()
		return len(a) == 4, fmt.Sprint(a)
	})
}

func TestJoinedAndSetKeysErrors(t *testing.T) {
	ms := rotationCluster(t, time.Second)
	if err := ms[0].Joined(); err != nil {
		t.Errorf("Joined in a 3-node cluster: %v", err)
	}
	if err := ms[0].SetKeys([]byte("short"), nil); err == nil {
		t.Error("SetKeys accepted a 5-byte key")
	}
	b := &book{addrs: map[string]string{}}
	plain := start(t, b, "plain", nil, nil)
	if err := plain.SetKeys(testKey, nil); err == nil {
		t.Error("SetKeys on an unencrypted memberlist succeeded")
	}
	if err := plain.Joined(); err != nil {
		t.Errorf("a lone node with nothing discovered is joined: %v", err)
	}
	b.set("ghost", 1) // discovered, never reachable
	waitFor(t, "lone node with an unreachable peer is not joined", func() (bool, string) {
		err := plain.Joined()
		return err != nil, fmt.Sprint(err)
	})
}
