package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Port is the UDP destination port of single-hop BFD control packets (RFC 5881 §4).
const Port = 3784

// packetLen is the length of a control packet without authentication (RFC 5880 §4.1).
const packetLen = 24

// State is a session state as carried in the Sta field (RFC 5880 §4.1).
type State uint8

// Session states.
const (
	StateAdminDown State = 0
	StateDown      State = 1
	StateInit      State = 2
	StateUp        State = 3
)

func (s State) String() string {
	switch s {
	case StateAdminDown:
		return "AdminDown"
	case StateDown:
		return "Down"
	case StateInit:
		return "Init"
	case StateUp:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a diagnostic code (RFC 5880 §4.1).
type Diag uint8

// Diagnostic codes. This implementation sets DiagNone, DiagControlDetectionExpired,
// DiagNeighborDown and DiagAdminDown; the others may arrive from a peer.
const (
	DiagNone                    Diag = 0
	DiagControlDetectionExpired Diag = 1
	DiagEchoFailed              Diag = 2
	DiagNeighborDown            Diag = 3
	DiagForwardingReset         Diag = 4
	DiagPathDown                Diag = 5
	DiagConcatenatedPathDown    Diag = 6
	DiagAdminDown               Diag = 7
	DiagReverseConcatPathDown   Diag = 8
)

func (d Diag) String() string {
	switch d {
	case DiagNone:
		return "none"
	case DiagControlDetectionExpired:
		return "control detection time expired"
	case DiagEchoFailed:
		return "echo function failed"
	case DiagNeighborDown:
		return "neighbor signaled session down"
	case DiagForwardingReset:
		return "forwarding plane reset"
	case DiagPathDown:
		return "path down"
	case DiagConcatenatedPathDown:
		return "concatenated path down"
	case DiagAdminDown:
		return "administratively down"
	case DiagReverseConcatPathDown:
		return "reverse concatenated path down"
	}
	return fmt.Sprintf("Diag(%d)", uint8(d))
}

// Packet is a BFD control packet without authentication section (RFC 5880 §4.1). The
// version is always 1 and the length always 24 on the wire; intervals are whole
// microseconds there (Marshal truncates and saturates).
type Packet struct {
	Diag  Diag
	State State
	// Poll, Final, ControlPlaneIndependent, AuthPresent, Demand and Multipoint are the
	// P, F, C, A, D and M bits.
	Poll, Final, ControlPlaneIndependent, AuthPresent, Demand, Multipoint bool
	DetectMult                                                            uint8
	MyDiscriminator, YourDiscriminator                                    uint32
	DesiredMinTx, RequiredMinRx, RequiredMinEchoRx                        time.Duration
}

// Errors returned by Parse; test with errors.Is.
var (
	ErrShort         = errors.New("bfd: packet shorter than 24 bytes")
	ErrVersion       = errors.New("bfd: version is not 1")
	ErrLength        = errors.New("bfd: bad length field")
	ErrDetectMult    = errors.New("bfd: detect mult is zero")
	ErrMultipoint    = errors.New("bfd: multipoint bit set")
	ErrMyDiscr       = errors.New("bfd: my discriminator is zero")
	ErrYourDiscr     = errors.New("bfd: your discriminator is zero in state other than Down or AdminDown")
	ErrAuthenticated = errors.New("bfd: authentication present but none configured")
)

// Parse decodes a control packet and applies the reception checks of RFC 5880 §6.8.6
// that need no session: version 1, 24 ≤ length ≤ len(b), detect mult ≠ 0, M = 0, My
// Discriminator ≠ 0, Your Discriminator = 0 only in Down or AdminDown, and no
// authentication (this implementation configures none, so an A bit is an error).
// Bytes past the length field are ignored.
func Parse(b []byte) (Packet, error) {
	if len(b) < packetLen {
		return Packet{}, fmt.Errorf("%w (%d)", ErrShort, len(b))
	}
	if v := b[0] >> 5; v != 1 {
		return Packet{}, fmt.Errorf("%w (%d)", ErrVersion, v)
	}
	flags := b[1]
	p := Packet{
		Diag:                    Diag(b[0] & 0x1f),
		State:                   State(flags >> 6),
		Poll:                    flags&0x20 != 0,
		Final:                   flags&0x10 != 0,
		ControlPlaneIndependent: flags&0x08 != 0,
		AuthPresent:             flags&0x04 != 0,
		Demand:                  flags&0x02 != 0,
		Multipoint:              flags&0x01 != 0,
		DetectMult:              b[2],
		MyDiscriminator:         binary.BigEndian.Uint32(b[4:]),
		YourDiscriminator:       binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx:            usec(b[12:]),
		RequiredMinRx:           usec(b[16:]),
		RequiredMinEchoRx:       usec(b[20:]),
	}
	length := int(b[3])
	minLen := packetLen
	if p.AuthPresent {
		minLen = packetLen + 2
	}
	switch {
	case length < minLen || length > len(b):
		return Packet{}, fmt.Errorf("%w (%d, payload %d)", ErrLength, length, len(b))
	case p.AuthPresent:
		return Packet{}, ErrAuthenticated
	case p.DetectMult == 0:
		return Packet{}, ErrDetectMult
	case p.Multipoint:
		return Packet{}, ErrMultipoint
	case p.MyDiscriminator == 0:
		return Packet{}, ErrMyDiscr
	case p.YourDiscriminator == 0 && p.State != StateDown && p.State != StateAdminDown:
		return Packet{}, fmt.Errorf("%w (%s)", ErrYourDiscr, p.State)
	}
	return p, nil
}

func usec(b []byte) time.Duration {
	return time.Duration(binary.BigEndian.Uint32(b)) * time.Microsecond
}

func putUsec(b []byte, d time.Duration) {
	us := d / time.Microsecond
	switch {
	case us < 0:
		us = 0
	case us > 0xffffffff:
		us = 0xffffffff
	}
	binary.BigEndian.PutUint32(b, uint32(us))
}

// Marshal encodes p as a 24-byte version 1 control packet. It does not validate: the
// session never builds an invalid packet, and tests need to build them.
func (p Packet) Marshal() []byte {
	return p.AppendTo(make([]byte, 0, packetLen))
}

// AppendTo appends the encoding of p to b.
func (p Packet) AppendTo(b []byte) []byte {
	var w [packetLen]byte
	w[0] = 1<<5 | byte(p.Diag)&0x1f
	flags := byte(p.State&3) << 6
	for _, f := range []struct {
		set bool
		bit byte
	}{{p.Poll, 0x20}, {p.Final, 0x10}, {p.ControlPlaneIndependent, 0x08}, {p.AuthPresent, 0x04}, {p.Demand, 0x02}, {p.Multipoint, 0x01}} {
		if f.set {
			flags |= f.bit
		}
	}
	w[1] = flags
	w[2] = p.DetectMult
	w[3] = packetLen
	binary.BigEndian.PutUint32(w[4:], p.MyDiscriminator)
	binary.BigEndian.PutUint32(w[8:], p.YourDiscriminator)
	putUsec(w[12:], p.DesiredMinTx)
	putUsec(w[16:], p.RequiredMinRx)
	putUsec(w[20:], p.RequiredMinEchoRx)
	return append(b, w[:]...)
}
