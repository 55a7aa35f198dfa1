package bfd

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

var fast = Params{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3}

func newTestSession(discr uint32, p Params) *Session {
	return NewSession(t0, discr, p, rand.NewPCG(uint64(discr), 1))
}

// deliver ticks from at now and hands every packet it sends to to; it returns them.
func deliver(t *testing.T, now time.Time, from, to *Session) []Packet {
	t.Helper()
	out, _ := from.Tick(now)
	for _, p := range out {
		// Through the wire, as a peer would see it.
		q, err := Parse(p.Marshal())
		if err != nil {
			t.Fatalf("sent a packet that does not parse: %v (%+v)", err, p)
		}
		if err := to.Receive(now, q); err != nil {
			t.Fatalf("receive %+v: %v", q, err)
		}
	}
	return out
}

// up brings a and b Up by the three-way handshake started by a, checking each step.
func up(t *testing.T, a, b *Session) time.Time {
	t.Helper()
	now := t0
	if p := deliver(t, now, a, b); len(p) != 1 || p[0].State != StateDown || p[0].YourDiscriminator != 0 {
		t.Fatalf("a's first packets %+v, want one Down with your discriminator 0", p)
	}
	if b.State() != StateInit {
		t.Fatalf("b after Down: %s, want Init", b.State())
	}
	if p := deliver(t, now, b, a); len(p) != 1 || p[0].State != StateInit || p[0].YourDiscriminator != a.localDiscr {
		t.Fatalf("b's answer %+v, want Init to a's discriminator", p)
	}
	if a.State() != StateUp {
		t.Fatalf("a after Init: %s, want Up", a.State())
	}
	deliver(t, now, a, b)
	if b.State() != StateUp {
		t.Fatalf("b after Up: %s, want Up", b.State())
	}
	return now
}

// run exchanges packets between a and b at each wake-up until until, dropping what
// drop says.
func run(t *testing.T, now, until time.Time, a, b *Session, drop func(from *Session) bool) time.Time {
	t.Helper()
	for now.Before(until) {
		// Exchange until both ends are quiet at this instant (a Poll's Final, a state
		// change announced at once); then jump to the earlier wake-up.
		var wa, wb time.Time
		for quiet := false; !quiet; {
			quiet = true
			for _, pair := range [][2]*Session{{a, b}, {b, a}} {
				out, wake := pair[0].Tick(now)
				if pair[0] == a {
					wa = wake
				} else {
					wb = wake
				}
				if len(out) > 0 {
					quiet = false
				}
				if drop != nil && drop(pair[0]) {
					continue
				}
				for _, p := range out {
					q, err := Parse(p.Marshal())
					if err != nil {
						t.Fatalf("sent a packet that does not parse: %v (%+v)", err, p)
					}
					if err := pair[1].Receive(now, q); err != nil {
						t.Fatalf("receive %+v: %v", q, err)
					}
				}
			}
		}
		next := until
		for _, w := range []time.Time{wa, wb} {
			if !w.IsZero() && w.Before(next) {
				next = w
			}
		}
		if !next.After(now) {
			t.Fatalf("wake-up %s not after now %s", next, now)
		}
		now = next
	}
	return now
}

func TestHandshakeAndTimers(t *testing.T) {
	a, b := newTestSession(1, fast), newTestSession(2, Params{DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 200 * time.Millisecond, DetectMult: 5})
	// Not Up: at least 1 s advertised, and no periodic rate above it.
	if st := a.Status(); st.DesiredMinTx != time.Second || st.TxInterval != time.Second {
		t.Fatalf("before Up: %+v, want DesiredMinTx and TxInterval 1s", st)
	}
	now := up(t, a, b)
	// Up starts a Poll Sequence to the configured timers (§6.8.3).
	if st := a.Status(); !st.Polling || st.DesiredMinTx != 100*time.Millisecond {
		t.Fatalf("a just Up: %+v, want polling with DesiredMinTx 100ms", st)
	}
	run(t, now, now.Add(5*time.Second), a, b, nil)
	sa, sb := a.Status(), b.Status()
	if sa.State != StateUp || sb.State != StateUp || sa.Polling || sb.Polling {
		t.Fatalf("after 5s: a %+v, b %+v", sa, sb)
	}
	// §6.8.2/§6.8.7: TX = max(local DesiredMinTx, remote RequiredMinRx).
	if sa.TxInterval != 200*time.Millisecond || sb.TxInterval != 300*time.Millisecond {
		t.Fatalf("tx intervals a %s (want 200ms), b %s (want 300ms)", sa.TxInterval, sb.TxInterval)
	}
	// §6.8.4: detection = remote DetectMult × max(local RequiredMinRx, remote DesiredMinTx).
	if sa.DetectionTime != 5*300*time.Millisecond || sb.DetectionTime != 3*200*time.Millisecond {
		t.Fatalf("detection a %s (want 1.5s), b %s (want 600ms)", sa.DetectionTime, sb.DetectionTime)
	}
	if sa.RemoteDiscriminator != 2 || sb.RemoteDiscriminator != 1 {
		t.Fatalf("discriminators a %+v b %+v", sa, sb)
	}
}

func TestDetectionExpiry(t *testing.T) {
	a, b := newTestSession(1, fast), newTestSession(2, fast)
	now := up(t, a, b)
	now = run(t, now, now.Add(5*time.Second), a, b, nil)
	// b falls silent: a notices after its detection time, not before.
	_, _ = a.Tick(now)
	detect := a.Status().DetectionTime
	if detect != 300*time.Millisecond {
		t.Fatalf("detection time %s, want 300ms", detect)
	}
	start := now
	var lastRx time.Time
	for a.State() == StateUp {
		lastRx = a.lastRx
		now = run(t, now, now.Add(10*time.Millisecond), a, b, func(s *Session) bool { return s == b })
		if now.Sub(start) > 2*time.Second {
			t.Fatal("a never went down")
		}
	}
	st := a.Status()
	if st.State != StateDown || st.LocalDiag != DiagControlDetectionExpired || st.RemoteDiscriminator != 0 {
		t.Fatalf("after silence: %+v, want Down, diag 1, remote discriminator 0", st)
	}
	if now.Sub(lastRx) < detect {
		t.Fatalf("went down %s after the last packet, before the detection time %s", now.Sub(lastRx), detect)
	}
	// Down again means slow again; a told b at once (b's packets were lost, a's were not).
	if st.DesiredMinTx != time.Second {
		t.Fatalf("DesiredMinTx after Down %s, want 1s", st.DesiredMinTx)
	}
	if sb := b.Status(); sb.State != StateDown || sb.LocalDiag != DiagNeighborDown || sb.RemoteDiag != DiagControlDetectionExpired {
		t.Fatalf("b %+v, want Down with diag 3, remote diag 1", sb)
	}
}

func TestExactDetectionBoundary(t *testing.T) {
	a, b := newTestSession(1, fast), newTestSession(2, fast)
	now := up(t, a, b)
	// Still at 1s×3 from b's view: b's Desired is 1s until its Poll completes.
	det := a.Status().DetectionTime
	if det != 3*time.Second {
		t.Fatalf("detection right after Up %s, want 3s (b still advertises 1s)", det)
	}
	a.Tick(now.Add(det - time.Nanosecond))
	if a.State() != StateUp {
		t.Fatalf("down before the detection time: %s", a.State())
	}
	a.Tick(now.Add(det))
	if a.State() != StateDown || a.Status().LocalDiag != DiagControlDetectionExpired {
		t.Fatalf("at the detection time: %+v", a.Status())
	}
}

func TestRemoteSignalsDown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote State
	}{{"remote AdminDown", StateAdminDown}, {"remote Down", StateDown}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newTestSession(1, fast), newTestSession(2, fast)
			now := up(t, a, b)
			now = run(t, now, now.Add(2*time.Second), a, b, nil)
			p := Packet{State: tc.remote, DetectMult: 3, MyDiscriminator: 2, YourDiscriminator: 1, DesiredMinTx: time.Second, RequiredMinRx: time.Second}
			if tc.remote == StateAdminDown {
				p.Diag = DiagAdminDown
			}
			if err := a.Receive(now, p); err != nil {
				t.Fatal(err)
			}
			st := a.Status()
			if st.State != StateDown || st.LocalDiag != DiagNeighborDown {
				t.Fatalf("%+v, want Down with diag 3", st)
			}
			// Announced at once.
			out, _ := a.Tick(now)
			if len(out) == 0 || out[0].State != StateDown || out[0].Diag != DiagNeighborDown {
				t.Fatalf("sent %+v, want Down diag 3 at once", out)
			}
			// AdminDown keeps a Down session Down; Down brings it to Init.
			if err := a.Receive(now, p); err != nil {
				t.Fatal(err)
			}
			want := StateDown
			if tc.remote == StateDown {
				want = StateInit
			}
			if a.State() != want {
				t.Fatalf("second packet: %s, want %s", a.State(), want)
			}
		})
	}
}

func TestLocalAdminDown(t *testing.T) {
	a, b := newTestSession(1, fast), newTestSession(2, fast)
	now := up(t, a, b)
	a.AdminDown(now)
	out := deliver(t, now, a, b)
	if len(out) == 0 || out[0].State != StateAdminDown || out[0].Diag != DiagAdminDown {
		t.Fatalf("sent %+v, want AdminDown diag 7", out)
	}
	if st := b.Status(); st.State != StateDown || st.LocalDiag != DiagNeighborDown || st.RemoteState != StateAdminDown {
		t.Fatalf("peer %+v, want Down diag 3", st)
	}
	// An AdminDown session ignores the peer, and never expires.
	if err := a.Receive(now, Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 2, DesiredMinTx: time.Second, RequiredMinRx: time.Second}); !errors.Is(err, ErrAdminDown) {
		t.Fatalf("receive in AdminDown: %v", err)
	}
	a.Tick(now.Add(time.Minute))
	if a.State() != StateAdminDown {
		t.Fatalf("%s, want AdminDown", a.State())
	}
}

func TestDiscriminators(t *testing.T) {
	a := newTestSession(7, fast)
	if err := a.Receive(t0, Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 9, YourDiscriminator: 8, RequiredMinRx: time.Second}); !errors.Is(err, ErrWrongDiscriminator) {
		t.Fatalf("other session's discriminator: %v", err)
	}
	if a.Status().RemoteDiscriminator != 0 {
		t.Fatal("a discarded packet changed the session")
	}
	if err := a.Receive(t0, Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 9, RequiredMinRx: time.Second}); err != nil {
		t.Fatalf("your discriminator 0 in Down: %v", err)
	}
	out, _ := a.Tick(t0)
	if len(out) != 1 || out[0].YourDiscriminator != 9 || out[0].MyDiscriminator != 7 || out[0].State != StateInit {
		t.Fatalf("reply %+v", out)
	}
}

func TestPassive(t *testing.T) {
	a, b := newTestSession(1, Params{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3, Passive: true}), newTestSession(2, fast)
	for now := t0; now.Before(t0.Add(10 * time.Second)); now = now.Add(100 * time.Millisecond) {
		if out, wake := a.Tick(now); len(out) != 0 || !wake.IsZero() {
			t.Fatalf("passive session sent %+v (wake %s) before hearing its peer", out, wake)
		}
	}
	now := t0.Add(10 * time.Second)
	deliver(t, now, b, a)
	if a.State() != StateInit {
		t.Fatalf("%s, want Init", a.State())
	}
	if out := deliver(t, now, a, b); len(out) != 1 || out[0].State != StateInit {
		t.Fatalf("passive reply %+v, want Init at once", out)
	}
	now = run(t, now, now.Add(5*time.Second), a, b, nil)
	if a.State() != StateUp || b.State() != StateUp {
		t.Fatalf("a %s b %s", a.State(), b.State())
	}
	// Silence: the passive end goes Down, forgets the peer and falls silent again.
	now = run(t, now, now.Add(5*time.Second), a, b, func(s *Session) bool { return s == b })
	if a.State() != StateDown {
		t.Fatalf("%s, want Down", a.State())
	}
	if out, wake := a.Tick(now.Add(time.Minute)); len(out) != 0 || !wake.IsZero() {
		t.Fatalf("passive session sends %+v after its peer went away", out)
	}
}

func TestRemoteMinRxZeroStopsTransmission(t *testing.T) {
	a := newTestSession(1, fast)
	a.Tick(t0)
	if err := a.Receive(t0, Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 2, DesiredMinTx: time.Second}); err != nil {
		t.Fatal(err)
	}
	a.Tick(t0) // the immediate Init
	if out, _ := a.Tick(t0.Add(10 * time.Second)); len(out) != 0 {
		t.Fatalf("sent %+v to a peer with RequiredMinRx 0", out)
	}
}

// A Poll is answered at once with F set and P clear, and the peer's new values apply.
func TestAnswerPoll(t *testing.T) {
	a, b := newTestSession(1, fast), newTestSession(2, fast)
	now := up(t, a, b)
	now = run(t, now, now.Add(3*time.Second), a, b, nil)
	if err := a.Receive(now, Packet{State: StateUp, Poll: true, DetectMult: 4, MyDiscriminator: 2, YourDiscriminator: 1,
		DesiredMinTx: 400 * time.Millisecond, RequiredMinRx: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	out, _ := a.Tick(now)
	if len(out) != 1 || !out[0].Final || out[0].Poll || out[0].State != StateUp {
		t.Fatalf("answer %+v, want one Final without Poll", out)
	}
	if st := a.Status(); st.TxInterval != 500*time.Millisecond || st.DetectionTime != 4*400*time.Millisecond || st.State != StateUp {
		t.Fatalf("%+v, want tx 500ms, detection 1.6s", st)
	}
}

// Timer changes while Up run a Poll Sequence; a larger DesiredMinTx and a smaller
// RequiredMinRx apply only after the Final, the reverse at once (§6.8.3).
func TestPollSequenceTimerChange(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		to                       Params
		txDuring, detectDuring   time.Duration
		txAfter, detectAfter     time.Duration
		peerTxAfter, peerDetectA time.Duration
	}{
		{
			name: "slower", to: Params{DesiredMinTx: 500 * time.Millisecond, RequiredMinRx: 400 * time.Millisecond, DetectMult: 3},
			txDuring: 100 * time.Millisecond, detectDuring: 3 * 400 * time.Millisecond,
			txAfter: 500 * time.Millisecond, detectAfter: 3 * 400 * time.Millisecond,
			peerTxAfter: 400 * time.Millisecond, peerDetectA: 3 * 500 * time.Millisecond,
		},
		{
			name: "faster", to: Params{DesiredMinTx: 50 * time.Millisecond, RequiredMinRx: 50 * time.Millisecond, DetectMult: 3},
			txDuring: 100 * time.Millisecond, detectDuring: 3 * 100 * time.Millisecond,
			txAfter: 100 * time.Millisecond, detectAfter: 3 * 100 * time.Millisecond,
			peerTxAfter: 100 * time.Millisecond, peerDetectA: 3 * 100 * time.Millisecond,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newTestSession(1, fast), newTestSession(2, fast)
			now := up(t, a, b)
			now = run(t, now, now.Add(3*time.Second), a, b, nil)
			a.Configure(now, tc.to)
			st := a.Status()
			if !st.Polling || st.DesiredMinTx != tc.to.DesiredMinTx || st.RequiredMinRx != tc.to.RequiredMinRx {
				t.Fatalf("after Configure: %+v, want polling with the new values advertised", st)
			}
			if st.TxInterval != tc.txDuring || st.DetectionTime != tc.detectDuring {
				t.Fatalf("during the Poll: tx %s detect %s, want %s %s", st.TxInterval, st.DetectionTime, tc.txDuring, tc.detectDuring)
			}
			out := deliver(t, now, a, b)
			if len(out) != 1 || !out[0].Poll {
				t.Fatalf("sent %+v, want one Poll at once", out)
			}
			if out := deliver(t, now, b, a); len(out) != 1 || !out[0].Final {
				t.Fatalf("peer answered %+v, want one Final", out)
			}
			st = a.Status()
			if st.Polling || st.TxInterval != tc.txAfter || st.DetectionTime != tc.detectAfter || st.State != StateUp {
				t.Fatalf("after the Final: %+v, want tx %s detect %s", st, tc.txAfter, tc.detectAfter)
			}
			run(t, now, now.Add(5*time.Second), a, b, nil)
			sb := b.Status()
			if sb.State != StateUp || sb.TxInterval != tc.peerTxAfter || sb.DetectionTime != tc.peerDetectA {
				t.Fatalf("peer: %+v, want Up, tx %s detect %s", sb, tc.peerTxAfter, tc.peerDetectA)
			}
		})
	}
}

// A change during a Poll Sequence waits for it, then starts its own.
func TestConfigureDuringPoll(t *testing.T) {
	a, b := newTestSession(1, fast), newTestSession(2, fast)
	now := up(t, a, b)
	now = run(t, now, now.Add(3*time.Second), a, b, nil)
	a.Configure(now, Params{DesiredMinTx: 200 * time.Millisecond, RequiredMinRx: 200 * time.Millisecond, DetectMult: 3})
	a.Configure(now, Params{DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, DetectMult: 3})
	if st := a.Status(); st.DesiredMinTx != 200*time.Millisecond {
		t.Fatalf("second change started a Poll during the first: %+v", st)
	}
	deliver(t, now, a, b)
	deliver(t, now, b, a)
	if st := a.Status(); !st.Polling || st.DesiredMinTx != 300*time.Millisecond {
		t.Fatalf("after the first Final: %+v, want a second Poll to 300ms", st)
	}
	run(t, now, now.Add(5*time.Second), a, b, nil)
	if st := b.Status(); st.TxInterval != 300*time.Millisecond || st.DetectionTime != 900*time.Millisecond {
		t.Fatalf("peer %+v", st)
	}
}

// §6.8.7 jitter: each interval is 75–100% of the negotiated one, 75–90% with detect
// mult 1; and the random source decides, so both ends of the range are reached.
func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		mult   int
		lo, hi time.Duration
	}{{3, 750 * time.Millisecond, time.Second}, {1, 750 * time.Millisecond, 900 * time.Millisecond}} {
		s := NewSession(t0, 1, Params{DesiredMinTx: time.Second, RequiredMinRx: time.Second, DetectMult: tc.mult}, rand.NewPCG(1, 2))
		now := t0
		var seen []time.Duration
		_, wake := s.Tick(now)
		for range 2000 {
			d := wake.Sub(now)
			if d < tc.lo || d > tc.hi {
				t.Fatalf("mult %d: interval %s outside [%s, %s]", tc.mult, d, tc.lo, tc.hi)
			}
			seen = append(seen, d)
			now = wake
			var out []Packet
			out, wake = s.Tick(now)
			if len(out) != 1 {
				t.Fatalf("sent %d packets at a wake-up", len(out))
			}
		}
		var minSeen, maxSeen = seen[0], seen[0]
		for _, d := range seen {
			minSeen, maxSeen = min(minSeen, d), max(maxSeen, d)
		}
		span := tc.hi - tc.lo
		if minSeen > tc.lo+span/20 || maxSeen < tc.hi-span/20 {
			t.Fatalf("mult %d: intervals only in [%s, %s]", tc.mult, minSeen, maxSeen)
		}
	}
}

// Whatever valid packets arrive, in whatever order and at whatever times, the session
// never panics, only sends packets that parse, never asks to be woken in the past, and
// keeps its variables consistent.
func FuzzSession(f *testing.F) {
	f.Add([]byte{0x20, 0x40, 3, 24, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 0, 0, 0, 0, 50}, false)
	f.Add(append(frrUp, 10), true)
	f.Fuzz(func(t *testing.T, data []byte, passive bool) {
		s := NewSession(t0, 1, Params{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 50 * time.Millisecond, DetectMult: 2, Passive: passive}, rand.NewPCG(1, 1))
		now := t0
		check := func() {
			out, wake := s.Tick(now)
			for _, p := range out {
				if _, err := Parse(p.Marshal()); err != nil {
					t.Fatalf("sent unparsable %+v: %v", p, err)
				}
				if p.Poll && p.Final {
					t.Fatalf("sent P and F together: %+v", p)
				}
			}
			if !wake.IsZero() && !wake.After(now) {
				t.Fatalf("wake %s not after now %s", wake, now)
			}
			if st := s.Status(); st.State != StateUp && st.DesiredMinTx < time.Second {
				t.Fatalf("DesiredMinTx %s while %s", st.DesiredMinTx, st.State)
			}
		}
		// Each record: 24 bytes of packet and one byte of milliseconds to wait.
		for len(data) >= 25 {
			if p, err := Parse(data[:24]); err == nil {
				_ = s.Receive(now, p)
			}
			check()
			now = now.Add(time.Duration(data[24]) * 10 * time.Millisecond)
			check()
			data = data[25:]
		}
		if len(data) > 0 && data[0]&1 == 1 {
			s.Configure(now, Params{DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, DetectMult: 1})
			check()
		}
	})
}
