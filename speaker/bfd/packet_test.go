package bfd

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A packet as FRR's bfdd sends it in Up: version 1, diag 0, state Up, length 24,
// discriminators 1 and 2, 300 ms / 300 ms / 50 ms.
var frrUp = []byte{
	0x20, 0xc0, 0x03, 0x18,
	0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x02,
	0x00, 0x04, 0x93, 0xe0,
	0x00, 0x04, 0x93, 0xe0,
	0x00, 0x00, 0xc3, 0x50,
}

func mutate(f func(b []byte) []byte) []byte {
	b := bytes.Clone(frrUp)
	return f(b)
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want Packet
		err  error
	}{
		{name: "FRR Up", in: frrUp, want: Packet{State: StateUp, DetectMult: 3, MyDiscriminator: 1, YourDiscriminator: 2,
			DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, RequiredMinEchoRx: 50 * time.Millisecond}},
		{name: "trailing bytes past length are ignored", in: append(bytes.Clone(frrUp), 0xff, 0xff),
			want: Packet{State: StateUp, DetectMult: 3, MyDiscriminator: 1, YourDiscriminator: 2,
				DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, RequiredMinEchoRx: 50 * time.Millisecond}},
		{name: "Down with your discriminator 0, diag 1, poll", in: mutate(func(b []byte) []byte {
			b[0] = 0x21
			b[1] = 0x60
			copy(b[8:12], []byte{0, 0, 0, 0})
			return b
		}), want: Packet{Diag: DiagControlDetectionExpired, State: StateDown, Poll: true, DetectMult: 3, MyDiscriminator: 1,
			DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, RequiredMinEchoRx: 50 * time.Millisecond}},
		{name: "AdminDown with your discriminator 0, final, C, D", in: mutate(func(b []byte) []byte {
			b[0] = 0x27
			b[1] = 0x1a
			copy(b[8:12], []byte{0, 0, 0, 0})
			return b
		}), want: Packet{Diag: DiagAdminDown, State: StateAdminDown, Final: true, ControlPlaneIndependent: true, Demand: true, DetectMult: 3, MyDiscriminator: 1,
			DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, RequiredMinEchoRx: 50 * time.Millisecond}},
		{name: "short", in: frrUp[:23], err: ErrShort},
		{name: "version 0", in: mutate(func(b []byte) []byte { b[0] = 0x00; return b }), err: ErrVersion},
		{name: "version 2", in: mutate(func(b []byte) []byte { b[0] = 0x40; return b }), err: ErrVersion},
		{name: "length below 24", in: mutate(func(b []byte) []byte { b[3] = 23; return b }), err: ErrLength},
		{name: "length beyond payload", in: mutate(func(b []byte) []byte { b[3] = 25; return b }), err: ErrLength},
		{name: "auth bit with length 24", in: mutate(func(b []byte) []byte { b[1] |= 0x04; return b }), err: ErrLength},
		{name: "auth bit with room for auth", in: mutate(func(b []byte) []byte { b[1] |= 0x04; b[3] = 28; return append(b, 1, 4, 0, 0) }), err: ErrAuthenticated},
		{name: "detect mult 0", in: mutate(func(b []byte) []byte { b[2] = 0; return b }), err: ErrDetectMult},
		{name: "multipoint", in: mutate(func(b []byte) []byte { b[1] |= 0x01; return b }), err: ErrMultipoint},
		{name: "my discriminator 0", in: mutate(func(b []byte) []byte { copy(b[4:8], []byte{0, 0, 0, 0}); return b }), err: ErrMyDiscr},
		{name: "your discriminator 0 in Up", in: mutate(func(b []byte) []byte { copy(b[8:12], []byte{0, 0, 0, 0}); return b }), err: ErrYourDiscr},
		{name: "your discriminator 0 in Init", in: mutate(func(b []byte) []byte { b[1] = 0x80; copy(b[8:12], []byte{0, 0, 0, 0}); return b }), err: ErrYourDiscr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Parse error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("Parse (-want +got):\n%s", d)
			}
			if !bytes.Equal(got.Marshal(), tc.in[:24]) {
				t.Fatalf("Marshal = % x, want % x", got.Marshal(), tc.in[:24])
			}
		})
	}
}

func TestMarshalSaturates(t *testing.T) {
	p := Packet{State: StateUp, DetectMult: 1, MyDiscriminator: 1, YourDiscriminator: 1,
		DesiredMinTx: 10000 * time.Second, RequiredMinRx: -time.Second, RequiredMinEchoRx: 1500 * time.Nanosecond}
	got, err := Parse(p.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.DesiredMinTx != 0xffffffff*time.Microsecond || got.RequiredMinRx != 0 || got.RequiredMinEchoRx != time.Microsecond {
		t.Fatalf("got %+v", got)
	}
}

// Parse never panics, and whatever it accepts survives Marshal and Parse unchanged and
// re-encodes to the same first 24 bytes but for the length.
func FuzzParse(f *testing.F) {
	f.Add(frrUp)
	f.Add(Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 7, DesiredMinTx: time.Second}.Marshal())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		w := p.Marshal()
		want := bytes.Clone(b[:24])
		want[3] = 24 // Marshal always writes the unauthenticated length
		if !bytes.Equal(w, want) {
			t.Fatalf("Marshal(Parse(b)) = % x, want % x", w, want)
		}
		q, err := Parse(w)
		if err != nil {
			t.Fatalf("Parse(Marshal(p)): %v", err)
		}
		if q != p {
			t.Fatalf("round trip %+v != %+v", q, p)
		}
	})
}
