package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables/binaryutil"

	"github.com/loadstone-lb/loadstone/dataplane/plan"
)

// elem is one set or map element in wire form.
type elem struct {
	Key, KeyEnd []byte
	Val         []byte // map data
	Chain       string // vmap: goto this chain
}

func (e elem) id() string {
	if len(e.KeyEnd) == 0 {
		return string(e.Key)
	}
	return string(e.Key) + "\x00" + string(e.KeyEnd)
}

func (e elem) equal(o elem) bool {
	return string(e.Val) == string(o.Val) && e.Chain == o.Chain
}

// state is the table's content: what a plan asks for, or what was applied. The backend
// maps, which hold almost every element, are kept as whole tables per frontend, so that
// a diff skips unchanged tables without building their elements; the other sets are in
// wire form.
type state struct {
	chains map[string]chainSpec       // Maglev chains by name
	sets   map[string]map[string]elem // set name → element id → element (not backends)
	// tables are the backend maps: entry i of a frontend's table is the element
	// frontend . i → backend; an invalid AddrPort is a missing entry.
	tables map[plan.Frontend][]netip.AddrPort
}

func newState() *state {
	s := &state{chains: map[string]chainSpec{}, sets: map[string]map[string]elem{}, tables: map[plan.Frontend][]netip.AddrPort{}}
	for name := range sets() {
		if !isBackends(name) {
			s.sets[name] = map[string]elem{}
		}
	}
	return s
}

func isBackends(set string) bool {
	return set == famName(setBackends, false) || set == famName(setBackends, true)
}

func (s *state) add(set string, e elem) { s.sets[set][e.id()] = e }

// encodeFrontend: addr . proto (padded to 4) . port (big-endian, padded to 4).
func encodeFrontend(f plan.Frontend) []byte {
	a := f.Addr.AsSlice()
	b := make([]byte, 0, len(a)+8)
	b = append(b, a...)
	b = append(b, byte(f.Protocol), 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, f.Port)
	return append(b, 0, 0)
}

func decodeFrontend(b []byte) (plan.Frontend, error) {
	if len(b) != 12 && len(b) != 24 {
		return plan.Frontend{}, fmt.Errorf("frontend key of %d bytes", len(b))
	}
	n := len(b) - 8
	a, _ := netip.AddrFromSlice(b[:n])
	return plan.Frontend{Addr: a, Protocol: plan.Protocol(b[n]), Port: binary.BigEndian.Uint16(b[n+4:])}, nil
}

// encodeBackend: addr . port (big-endian, padded to 4), the DNAT registers' layout.
func encodeBackend(ap netip.AddrPort) []byte {
	b := ap.Addr().AsSlice()
	b = binary.BigEndian.AppendUint16(b, ap.Port())
	return append(b, 0, 0)
}

func decodeBackend(b []byte) (netip.AddrPort, error) {
	if len(b) != 8 && len(b) != 20 {
		return netip.AddrPort{}, fmt.Errorf("backend of %d bytes", len(b))
	}
	n := len(b) - 4
	a, _ := netip.AddrFromSlice(b[:n])
	return netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[n:])), nil
}

// encodeSlot: frontend . entry index, the index native-endian like jhash's output.
func encodeSlot(f plan.Frontend, i int) []byte {
	return append(encodeFrontend(f), binaryutil.NativeEndian.PutUint32(uint32(i))...)
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	out, _ := netip.AddrFromSlice(a)
	return out
}

// desired turns a plan into wire form.
func desired(p plan.Plan) *state {
	s := newState()
	for f, d := range p.Frontends {
		v6 := f.Addr.Is6()
		c := chainSpec{V6: v6, Size: d.Size, Affinity: d.Affinity}
		s.chains[c.name()] = c
		s.add(famName(setServices, v6), elem{Key: encodeFrontend(f), Chain: c.name()})
		// The table is keyed by frontend: a table shared by several LB IPs of one family
		// is installed once per IP, which spares a lookup per packet.
		s.tables[f] = p.Tables[d.ID]
	}
	for f := range p.Reject {
		s.add(famName(setReject, f.Addr.Is6()), elem{Key: encodeFrontend(f)})
	}
	for f := range p.Ranged {
		s.add(famName(setRanged, f.Addr.Is6()), elem{Key: encodeFrontend(f)})
	}
	for r := range p.Allowed {
		k := encodeFrontend(r.Frontend)
		s.add(famName(setAllowed, r.Frontend.Addr.Is6()), elem{
			Key:    append(append([]byte{}, k...), r.Source.Masked().Addr().AsSlice()...),
			KeyEnd: append(append([]byte{}, k...), lastAddr(r.Source).AsSlice()...),
		})
	}
	for f := range p.Masquerade {
		s.add(famName(setMasquerade, f.Addr.Is6()), elem{Key: encodeFrontend(f)})
	}
	for a := range p.Remote {
		s.add(famName(setRemote, a.Is6()), elem{Key: a.AsSlice()})
	}
	return s
}

// count is the number of elements per metric kind.
func (s *state) count() map[string]int {
	c := map[string]int{"chains": len(s.chains)}
	for name, els := range s.sets {
		c[kindOf(name)] += len(els)
	}
	for _, t := range s.tables {
		for _, b := range t {
			if b.IsValid() {
				c["table_entries"]++
			}
		}
	}
	return c
}

// kindOf maps a set name to the objects metric's kind label.
func kindOf(set string) string {
	switch set[:len(set)-1] {
	case setServices:
		return "frontends"
	case setBackends:
		return "table_entries"
	case setReject:
		return "reject"
	case setRanged:
		return "ranged"
	case setAllowed:
		return "source_ranges"
	case setMasquerade:
		return "masquerade"
	case setRemote:
		return "remote"
	}
	return "other"
}
