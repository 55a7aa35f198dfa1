package bfd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// slowTxInterval is the least Desired Min TX Interval while a session is not Up
// (RFC 5880 §6.8.3).
const slowTxInterval = time.Second

// Params are a session's configurable timers and role.
type Params struct {
	// DesiredMinTx is bfd.DesiredMinTxInterval once Up (1 s is used while not Up).
	DesiredMinTx time.Duration
	// RequiredMinRx is bfd.RequiredMinRxInterval; zero asks the peer to send nothing.
	RequiredMinRx time.Duration
	// DetectMult is bfd.DetectMult (1–255).
	DetectMult int
	// Passive: send nothing until the peer has sent a packet (RFC 5880 §6.1).
	Passive bool
}

// Validate reports whether p can configure a session.
func (p Params) Validate() error {
	switch {
	case p.DetectMult < 1 || p.DetectMult > 255:
		return fmt.Errorf("detect mult %d not in 1..255", p.DetectMult)
	case p.DesiredMinTx < time.Microsecond || p.DesiredMinTx > 0xffffffff*time.Microsecond:
		return fmt.Errorf("desired min tx %s not in 1µs..4294s", p.DesiredMinTx)
	case p.RequiredMinRx < 0 || p.RequiredMinRx > 0xffffffff*time.Microsecond:
		return fmt.Errorf("required min rx %s not in 0..4294s", p.RequiredMinRx)
	}
	return nil
}

// SessionStatus is a snapshot of a session's variables (RFC 5880 §6.8.1) and timers.
type SessionStatus struct {
	State, RemoteState  State
	LocalDiag           Diag
	RemoteDiag          Diag
	LocalDiscriminator  uint32
	RemoteDiscriminator uint32
	// DesiredMinTx and RequiredMinRx are the values this end advertises now.
	DesiredMinTx, RequiredMinRx time.Duration
	// RemoteDesiredMinTx, RemoteMinRx and RemoteDetectMult are the peer's last values.
	RemoteDesiredMinTx, RemoteMinRx time.Duration
	RemoteDetectMult                int
	// TxInterval is the negotiated transmit interval before jitter; DetectionTime the
	// time without packets after which the session goes down (zero before any packet).
	TxInterval, DetectionTime time.Duration
	// Polling: a Poll Sequence this end started is waiting for its Final.
	Polling bool
}

// Errors returned by Session.Receive for packets it discards.
var (
	ErrWrongDiscriminator = errors.New("bfd: your discriminator is not this session's")
	ErrAdminDown          = errors.New("bfd: session is administratively down")
)

// Session is one BFD session's state machine (RFC 5880 §6.2, §6.8), asynchronous mode,
// without authentication, echo or demand mode. It has no clock, no I/O and no
// goroutines: callers pass the time to every method, feed it received packets with
// Receive and collect what to send, and when to call again, from Tick. It is not safe for
// concurrent use.
type Session struct {
	cfg Params
	rnd *rand.Rand

	state, remoteState State
	localDiscr         uint32
	remoteDiscr        uint32
	localDiag          Diag
	remoteDiag         Diag

	// desiredMinTx and requiredMinRx are bfd.DesiredMinTxInterval and
	// bfd.RequiredMinRxInterval: what this end advertises.
	desiredMinTx, requiredMinRx time.Duration
	// While polling, the values in force before the Poll Sequence started: §6.8.3 keeps
	// the slower transmit rate and the longer detection time until the Final.
	oldDesiredMinTx, oldRequiredMinRx time.Duration
	polling                           bool

	remoteMinRx        time.Duration // bfd.RemoteMinRxInterval
	remoteDesiredMinTx time.Duration
	remoteDetectMult   int

	lastRx   time.Time // zero: no packet since the last detection expiry
	nextTx   time.Time // zero: no periodic transmission scheduled
	sendNow  bool      // a state change to announce at once
	oweFinal bool      // a Poll to answer at once
}

// NewSession returns a session in state Down with the given local discriminator (non
// zero, unique among the caller's sessions), parameters and random source for jitter.
func NewSession(now time.Time, localDiscr uint32, p Params, src rand.Source) *Session {
	s := &Session{
		cfg:         p,
		rnd:         rand.New(src),
		state:       StateDown,
		remoteState: StateDown,
		localDiscr:  localDiscr,
		remoteMinRx: time.Microsecond, // §6.8.1: initialised to 1
	}
	s.desiredMinTx = max(p.DesiredMinTx, slowTxInterval)
	s.requiredMinRx = p.RequiredMinRx
	s.schedule(now, true)
	return s
}

// State returns bfd.SessionState.
func (s *Session) State() State { return s.state }

// Status returns a snapshot of the session's variables.
func (s *Session) Status() SessionStatus {
	st := SessionStatus{
		State:               s.state,
		RemoteState:         s.remoteState,
		LocalDiag:           s.localDiag,
		RemoteDiag:          s.remoteDiag,
		LocalDiscriminator:  s.localDiscr,
		RemoteDiscriminator: s.remoteDiscr,
		DesiredMinTx:        s.desiredMinTx,
		RequiredMinRx:       s.requiredMinRx,
		RemoteDesiredMinTx:  s.remoteDesiredMinTx,
		RemoteMinRx:         s.remoteMinRx,
		RemoteDetectMult:    s.remoteDetectMult,
		TxInterval:          s.txInterval(),
		Polling:             s.polling,
	}
	if !s.lastRx.IsZero() {
		st.DetectionTime = s.detectionTime()
	}
	return st
}

// txInterval is the negotiated transmit interval (§6.8.2, §6.8.7): the larger of what we
// want and what the peer can take. During a Poll Sequence an increase of our own
// interval does not apply yet (§6.8.3); a decrease applies at once.
func (s *Session) txInterval() time.Duration {
	d := s.desiredMinTx
	if s.polling {
		d = min(d, s.oldDesiredMinTx)
	}
	return max(d, s.remoteMinRx)
}

// detectionTime is §6.8.4 for asynchronous mode: the peer's multiplier times the
// larger of our RequiredMinRx and its DesiredMinTx. During a Poll Sequence a reduced
// RequiredMinRx does not apply yet (§6.8.3); an increase applies at once.
func (s *Session) detectionTime() time.Duration {
	rx := s.requiredMinRx
	if s.polling {
		rx = max(rx, s.oldRequiredMinRx)
	}
	return time.Duration(s.remoteDetectMult) * max(rx, s.remoteDesiredMinTx)
}

// mayTransmit: §6.8.7: nothing while the peer asked for no packets, nothing from a
// passive end that has not heard its peer.
func (s *Session) mayTransmit() bool {
	if s.remoteMinRx == 0 {
		return false
	}
	if s.cfg.Passive && s.remoteDiscr == 0 {
		return false
	}
	return true
}

// schedule sets the next periodic transmission: at once if immediate, else one jittered
// interval after now (§6.8.7: minus 0–25%, or 10–25% with a detect mult of 1).
func (s *Session) schedule(now time.Time, immediate bool) {
	if !s.mayTransmit() {
		s.nextTx = time.Time{}
		return
	}
	if immediate {
		s.nextTx = now
		return
	}
	iv := s.txInterval()
	lo, hi := iv*75/100, iv
	if s.cfg.DetectMult == 1 {
		hi = iv * 90 / 100
	}
	d := lo
	if hi > lo {
		d += time.Duration(s.rnd.Int64N(int64(hi-lo) + 1))
	}
	s.nextTx = now.Add(d)
}

// packet builds the control packet this end sends now.
func (s *Session) packet() Packet {
	return Packet{
		Diag:              s.localDiag,
		State:             s.state,
		Poll:              s.polling,
		DetectMult:        uint8(s.cfg.DetectMult),
		MyDiscriminator:   s.localDiscr,
		YourDiscriminator: s.remoteDiscr,
		DesiredMinTx:      s.desiredMinTx,
		RequiredMinRx:     s.requiredMinRx,
	}
}

// setState changes bfd.SessionState and applies what follows from it: the 1 s floor on
// DesiredMinTx outside Up, a Poll Sequence to bring the configured timers in once Up,
// and an immediate packet announcing the new state.
func (s *Session) setState(st State, diag Diag) {
	if st == s.state {
		return
	}
	s.state = st
	s.localDiag = diag
	s.sendNow = true
	if st != StateUp {
		// Slowing down outside Up needs no Poll; an ongoing one is void.
		s.polling = false
		s.desiredMinTx = max(s.cfg.DesiredMinTx, slowTxInterval)
		s.requiredMinRx = s.cfg.RequiredMinRx
	}
}

// targets are the timer values this end should advertise in its current state.
func (s *Session) targets() (tx, rx time.Duration) {
	if s.state == StateUp {
		return s.cfg.DesiredMinTx, s.cfg.RequiredMinRx
	}
	return max(s.cfg.DesiredMinTx, slowTxInterval), s.cfg.RequiredMinRx
}

// reconcileTimers moves the advertised timers towards the targets: directly when not
// Up, by a Poll Sequence when Up (§6.8.3), never starting one while one is in progress.
func (s *Session) reconcileTimers() {
	tx, rx := s.targets()
	if tx == s.desiredMinTx && rx == s.requiredMinRx {
		return
	}
	if s.state != StateUp {
		s.desiredMinTx, s.requiredMinRx = tx, rx
		return
	}
	if s.polling {
		return // the Final will bring us back here
	}
	s.oldDesiredMinTx, s.oldRequiredMinRx = s.desiredMinTx, s.requiredMinRx
	s.desiredMinTx, s.requiredMinRx = tx, rx
	s.polling = true
	s.sendNow = true
}

// Configure changes the session's parameters in place: timers through a Poll Sequence
// when Up, the role and detect mult at once.
func (s *Session) Configure(now time.Time, p Params) {
	s.cfg = p
	if s.state == StateAdminDown {
		return
	}
	s.reconcileTimers()
	if s.nextTx.IsZero() || s.sendNow {
		s.schedule(now, true)
	}
}

// AdminDown takes the session administratively down (diag 7): it keeps sending AdminDown
// packets, ignores what it receives, and the peer goes Down with diag 3.
func (s *Session) AdminDown(now time.Time) {
	if s.state == StateAdminDown {
		return
	}
	s.setState(StateAdminDown, DiagAdminDown)
	s.schedule(now, true)
}

// Receive processes a control packet Parse accepted and the caller demultiplexed to this
// session (RFC 5880 §6.8.6 from the Your Discriminator check on). It returns an error for
// packets it discards. Call Tick afterwards: a Poll is answered and a state change
// announced at once.
func (s *Session) Receive(now time.Time, p Packet) error {
	if p.YourDiscriminator != 0 && p.YourDiscriminator != s.localDiscr {
		return fmt.Errorf("%w (%d, ours %d)", ErrWrongDiscriminator, p.YourDiscriminator, s.localDiscr)
	}
	heard := s.remoteDiscr != 0
	s.remoteDiscr = p.MyDiscriminator
	s.remoteState = p.State
	s.remoteDiag = p.Diag
	s.remoteDesiredMinTx = p.DesiredMinTx
	s.remoteDetectMult = int(p.DetectMult)
	oldRemoteMinRx := s.remoteMinRx
	s.remoteMinRx = p.RequiredMinRx
	s.lastRx = now
	if p.Final && s.polling {
		s.polling = false
		s.reconcileTimers() // a change made during the Poll starts the next one
	}
	if s.state == StateAdminDown {
		return ErrAdminDown
	}
	if p.State == StateAdminDown {
		if s.state != StateDown {
			s.setState(StateDown, DiagNeighborDown)
		}
	} else {
		switch s.state {
		case StateDown:
			switch p.State {
			case StateDown:
				s.setState(StateInit, DiagNone)
			case StateInit:
				s.setState(StateUp, DiagNone)
			}
		case StateInit:
			if p.State == StateInit || p.State == StateUp {
				s.setState(StateUp, DiagNone)
			}
		case StateUp:
			if p.State == StateDown {
				s.setState(StateDown, DiagNeighborDown)
			}
		}
	}
	s.reconcileTimers()
	if p.Poll {
		s.oweFinal = true
	}
	switch {
	case s.sendNow || !heard:
		// A new state, or a passive end's first chance to speak.
		s.schedule(now, true)
	case s.remoteMinRx != oldRemoteMinRx || s.nextTx.IsZero():
		// The peer changed what it can take: reschedule from now (§6.8.7).
		s.schedule(now, false)
	}
	return nil
}

// Tick advances the session to now: it expires the detection timer (§6.8.4: Init or Up
// goes Down with diag 1, and the remote discriminator is forgotten), and returns the
// packets to send now and when to call Tick next.
func (s *Session) Tick(now time.Time) (out []Packet, wake time.Time) {
	if !s.lastRx.IsZero() && s.state != StateAdminDown && !now.Before(s.lastRx.Add(s.detectionTime())) {
		s.lastRx = time.Time{}
		s.remoteDiscr = 0
		if s.state == StateInit || s.state == StateUp {
			s.setState(StateDown, DiagControlDetectionExpired)
		}
		s.reconcileTimers()
		s.schedule(now, s.sendNow)
	}
	if s.oweFinal {
		// §6.5: Final at once, P clear, regardless of the transmit timer.
		s.oweFinal = false
		f := s.packet()
		f.Poll, f.Final = false, true
		out = append(out, f)
		if s.sendNow {
			// The Final carries the new state too.
			s.sendNow = false
			s.schedule(now, false)
		}
	}
	if s.sendNow {
		s.sendNow = false
		s.schedule(now, true)
	}
	if !s.nextTx.IsZero() && !now.Before(s.nextTx) {
		if s.mayTransmit() {
			out = append(out, s.packet())
		}
		s.schedule(now, false)
	}
	wake = s.nextTx
	if !s.lastRx.IsZero() && s.state != StateAdminDown {
		if d := s.lastRx.Add(s.detectionTime()); wake.IsZero() || d.Before(wake) {
			wake = d
		}
	}
	return out, wake
}
