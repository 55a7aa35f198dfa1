package nft

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is Loadstone's table, in family inet. Nothing else is ever touched.
const TableName = "loadstone"

// Chain names. The base chains are documented in doc.go.
const (
	chainFilterPrerouting = "filter-prerouting"
	chainFilterOutput     = "filter-output"
	chainNATPrerouting    = "nat-prerouting"
	chainNATOutput        = "nat-output"
	chainNATPostrouting   = "nat-postrouting"
	chainFirewall         = "firewall"
	chainServices         = "services"
)

// Priorities of the base chains.
const (
	// PriorityFilter runs source-range drops and rejects after conntrack (-200) and
	// before any DNAT (-100), so the destination is still the LB IP.
	PriorityFilter = -110
	// PriorityDNAT runs our DNAT before kube-proxy's nat chains (dstnat, -100): once a
	// connection is NATed, later nat chains of the same hook do not see it.
	PriorityDNAT = -105
	// PrioritySNAT masquerades before kube-proxy's srcnat (100) for our own connections.
	PrioritySNAT = 95
)

// Set and map names (suffix 4 or 6 for the family).
const (
	setServices   = "services"   // frontend → verdict: goto the Maglev chain of the table's size
	setBackends   = "backends"   // frontend . flow hash → backend addr . port
	setReject     = "reject"     // frontends without endpoints
	setRanged     = "ranged"     // frontends with loadBalancerSourceRanges
	setAllowed    = "allowed"    // frontend . source range (interval)
	setMasquerade = "masquerade" // frontends with externalTrafficPolicy Cluster
	setRemote     = "remote"     // backend addresses on other nodes
)

// Named counters, read at every sync.
const (
	counterRejected    = "rejected"
	counterSourceRange = "source-range-drops"
)

func famName(set string, v6 bool) string {
	if v6 {
		return set + "6"
	}
	return set + "4"
}

// chainSpec is one Maglev chain: the jhash modulus is a constant of the expression, so
// there is one chain per table size (and flow-hash kind) in use, never one per Service.
type chainSpec struct {
	V6       bool
	Size     int
	Affinity bool
}

func (c chainSpec) name() string {
	n := fmt.Sprintf("maglev%s-%d", map[bool]string{false: "4", true: "6"}[c.V6], c.Size)
	if c.Affinity {
		n += "-clientip"
	}
	return n
}

// parseChain is the inverse of chainSpec.name.
func parseChain(name string) (chainSpec, bool) {
	rest, ok := strings.CutPrefix(name, "maglev")
	if !ok || len(rest) < 3 {
		return chainSpec{}, false
	}
	c := chainSpec{V6: rest[0] == '6'}
	rest = rest[2:]
	if r, ok := strings.CutSuffix(rest, "-clientip"); ok {
		c.Affinity, rest = true, r
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return chainSpec{}, false
	}
	c.Size = n
	return c, true
}

var (
	table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}

	typeFrontend4 = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	typeFrontend6 = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
	typeAllowed4  = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeIPAddr)
	typeAllowed6  = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeIP6Addr)
	// The flow hash is typed mark: a fixed 32-bit host-order integer, as nft prints it.
	typeSlot4    = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeMark)
	typeSlot6    = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeMark)
	typeBackend4 = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	typeBackend6 = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService)
)

// sets returns every set and map of the table, by name.
func sets() map[string]*nftables.Set {
	out := map[string]*nftables.Set{}
	for _, v6 := range []bool{false, true} {
		fe, allowed, slot, be, addr := typeFrontend4, typeAllowed4, typeSlot4, typeBackend4, nftables.TypeIPAddr
		if v6 {
			fe, allowed, slot, be, addr = typeFrontend6, typeAllowed6, typeSlot6, typeBackend6, nftables.TypeIP6Addr
		}
		for _, s := range []*nftables.Set{
			{Name: famName(setServices, v6), KeyType: fe, IsMap: true, DataType: nftables.TypeVerdict},
			{Name: famName(setBackends, v6), KeyType: slot, IsMap: true, DataType: be},
			{Name: famName(setReject, v6), KeyType: fe},
			{Name: famName(setRanged, v6), KeyType: fe},
			// Concatenation sends the field lengths (NFTA_SET_DESC_CONCAT) that the
			// kernel's pipapo set type needs for concatenated ranges.
			{Name: famName(setAllowed, v6), KeyType: allowed, Interval: true, Concatenation: true},
			{Name: famName(setMasquerade, v6), KeyType: fe},
			{Name: famName(setRemote, v6), KeyType: addr},
		} {
			s.Table = table
			out[s.Name] = s
		}
	}
	return out
}

// 32-bit registers.
func reg(n uint32) uint32 { return unix.NFT_REG32_00 + n }

// scratch is a register no frontend/backend layout uses.
var scratch = reg(15)

func ne32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

// matchFamily: meta nfproto ipv4|ipv6.
func matchFamily(v6 bool) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if v6 {
		p = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: scratch},
		&expr.Cmp{Op: expr.CmpOpEq, Register: scratch, Data: []byte{p}},
	}
}

// loadFrontend puts daddr . l4proto . th dport into reg(0)… (v4: 3 registers, v6: 6).
func loadFrontend(v6 bool) []expr.Any {
	e := matchFamily(v6)
	if v6 {
		return append(e,
			&expr.Payload{DestRegister: reg(0), Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg(4)},
			&expr.Payload{DestRegister: reg(5), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	}
	return append(e,
		&expr.Payload{DestRegister: reg(0), Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg(1)},
		&expr.Payload{DestRegister: reg(2), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
}

// frontendRegs is how many 32-bit registers loadFrontend fills.
func frontendRegs(v6 bool) uint32 {
	if v6 {
		return 6
	}
	return 3
}

func loadSaddr(v6 bool, r uint32) *expr.Payload {
	if v6 {
		return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16}
	}
	return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
}

func loadDaddr(v6 bool, r uint32) *expr.Payload {
	if v6 {
		return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}
	}
	return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
}

// ctNew: ct state new.
func ctNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: scratch},
		&expr.Bitwise{SourceRegister: scratch, DestRegister: scratch, Len: 4, Mask: ne32(expr.CtStateBitNEW), Xor: ne32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: scratch, Data: ne32(0)},
	}
}

func counterRef(name string) *expr.Objref {
	return &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: name}
}

// firewallRules: per family, drop foreign sources of restricted frontends, then reject
// new connections to frontends without endpoints (TCP RST, else ICMP port unreachable).
func firewallRules(v6 bool) [][]expr.Any {
	fe := loadFrontend(v6)
	n := frontendRegs(v6)
	drop := append(append([]expr.Any{}, fe...),
		&expr.Lookup{SourceRegister: reg(0), SetName: famName(setRanged, v6)},
		loadSaddr(v6, reg(n)),
		&expr.Lookup{SourceRegister: reg(0), SetName: famName(setAllowed, v6), Invert: true},
		counterRef(counterSourceRange),
		&expr.Verdict{Kind: expr.VerdictDrop})
	rejectTCP := append(append(append([]expr.Any{}, fe...), ctNew()...),
		&expr.Lookup{SourceRegister: reg(0), SetName: famName(setReject, v6)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg(n - 2), Data: []byte{unix.IPPROTO_TCP}},
		counterRef(counterRejected),
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	rejectOther := append(append(append([]expr.Any{}, fe...), ctNew()...),
		&expr.Lookup{SourceRegister: reg(0), SetName: famName(setReject, v6)},
		counterRef(counterRejected),
		&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH})
	return [][]expr.Any{drop, rejectTCP, rejectOther}
}

// servicesRule: daddr . l4proto . th dport vmap @services{4,6}.
func servicesRule(v6 bool) []expr.Any {
	return append(loadFrontend(v6),
		&expr.Lookup{SourceRegister: reg(0), DestRegister: unix.NFT_REG_VERDICT, IsDestRegSet: true, SetName: famName(setServices, v6)})
}

// maglevRules: dnat to F . (jhash(flow) mod M seed S) map @backends. The flow hash is
// written right after the frontend registers, so together they are the map's key; jhash
// returns a host-order integer, hence native-endian keys. The first rule also marks the
// packet for masquerade when the frontend is in @masquerade (the NAT ends the rule, so
// the mark comes first); the second serves the others. Every expression is one that
// the nft CLI can print back.
func maglevRules(c chainSpec, seed, markBit uint32) [][]expr.Any {
	n := frontendRegs(c.V6)
	hashReg := reg(n)
	addrLen := uint32(4)
	famNAT := uint32(unix.NFPROTO_IPV4)
	if c.V6 {
		addrLen, famNAT = 16, unix.NFPROTO_IPV6
	}
	dnat := func(masq bool) []expr.Any {
		e := loadFrontend(c.V6)
		if masq {
			e = append(e, &expr.Lookup{SourceRegister: reg(0), SetName: famName(setMasquerade, c.V6)})
			e = append(e, setMark(markBit)...)
		}
		e = append(e, loadSaddr(c.V6, hashReg))
		hashLen := addrLen
		if !c.Affinity {
			// jhash(saddr . th sport): the rest of the 5-tuple is the frontend, the same
			// for every flow of this table.
			e = append(e, &expr.Payload{DestRegister: hashReg + addrLen/4, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2})
			hashLen += 4
		}
		// The backend lands after the hash input registers, which are free by then.
		beReg := hashReg + 1
		return append(e,
			&expr.Hash{SourceRegister: hashReg, DestRegister: hashReg, Length: hashLen, Modulus: uint32(c.Size), Seed: seed, Type: expr.HashTypeJenkins},
			&expr.Lookup{SourceRegister: reg(0), DestRegister: beReg, IsDestRegSet: true, SetName: famName(setBackends, c.V6)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: famNAT, RegAddrMin: beReg, RegProtoMin: beReg + addrLen/4, Specified: true})
	}
	return [][]expr.Any{dnat(true), dnat(false)}
}

// setMark: meta mark set meta mark | bit.
func setMark(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: scratch},
		&expr.Bitwise{SourceRegister: scratch, DestRegister: scratch, Len: 4, Mask: ne32(^bit), Xor: ne32(bit)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: scratch, SourceRegister: true},
	}
}

// masqueradeRule: a packet we marked (a new connection DNATed for a masquerade frontend)
// loses the mark bit, and is masqueraded when its backend is on another node, so replies
// come back through this node. A frontend's flows to local pods keep the client address.
func masqueradeRule(v6 bool, markBit uint32) []expr.Any {
	e := matchFamily(v6)
	return append(e,
		&expr.Meta{Key: expr.MetaKeyMARK, Register: scratch},
		&expr.Bitwise{SourceRegister: scratch, DestRegister: scratch, Len: 4, Mask: ne32(markBit), Xor: ne32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: scratch, Data: ne32(0)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: scratch},
		&expr.Bitwise{SourceRegister: scratch, DestRegister: scratch, Len: 4, Mask: ne32(^markBit), Xor: ne32(0)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: scratch, SourceRegister: true},
		loadDaddr(v6, reg(0)),
		&expr.Lookup{SourceRegister: reg(0), SetName: famName(setRemote, v6)},
		&expr.Masq{})
}

// baseChain describes a base chain and the regular chain it jumps to.
type baseChain struct {
	name   string
	typ    nftables.ChainType
	hook   *nftables.ChainHook
	prio   int32
	target string // jump target; "" for nat-postrouting (rules inline)
}

var baseChains = []baseChain{
	{chainFilterPrerouting, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, PriorityFilter, chainFirewall},
	{chainFilterOutput, nftables.ChainTypeFilter, nftables.ChainHookOutput, PriorityFilter, chainFirewall},
	{chainNATPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, PriorityDNAT, chainServices},
	{chainNATOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, PriorityDNAT, chainServices},
	{chainNATPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, PrioritySNAT, ""},
}
