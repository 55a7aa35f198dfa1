package nft

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
)

// kernelState lists the installed table in wire form, failing when its structure is not
// exactly ours (missing or foreign chains, rules, sets or counters), in which case the
// caller rebuilds it.
func (a *Applier) kernelState() (*state, error) {
	chains, err := a.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	byName := map[string]*nftables.Chain{}
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == TableName {
			byName[c.Name] = c
		}
	}
	if len(byName) == 0 {
		return nil, fmt.Errorf("no table")
	}
	st := newState()
	var maglevs []chainSpec
	for name := range byName {
		if cs, ok := parseChain(name); ok && cs.name() == name {
			maglevs = append(maglevs, cs)
			st.chains[name] = cs
		}
	}
	defs := a.chainDefs(maglevs, true)
	if len(defs) != len(byName) {
		return nil, fmt.Errorf("%d chains, want %d", len(byName), len(defs))
	}
	for _, d := range defs {
		c, ok := byName[d.chain.Name]
		if !ok {
			return nil, fmt.Errorf("chain %s missing", d.chain.Name)
		}
		if !sameHook(c, &d.chain) {
			return nil, fmt.Errorf("chain %s: hook, type or priority changed", c.Name)
		}
		got, err := ruleComments(a.cfg.NetNS, c.Name)
		if err != nil {
			return nil, err
		}
		var want []string
		for _, r := range d.rules {
			want = append(want, fingerprint(r))
		}
		if !slices.Equal(got, want) {
			return nil, fmt.Errorf("chain %s: rules differ", c.Name)
		}
	}
	objs, err := a.conn.GetObjects(table)
	if err != nil {
		return nil, fmt.Errorf("list counters: %w", err)
	}
	counters := map[string]bool{}
	for _, o := range objs {
		if name, _, ok := counterOf(o); ok {
			counters[name] = true
		}
	}
	if !counters[counterRejected] || !counters[counterSourceRange] {
		return nil, fmt.Errorf("counters missing")
	}
	installed, err := a.conn.GetSets(table)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	wantSets := sets()
	if len(installed) != len(wantSets) {
		return nil, fmt.Errorf("%d sets, want %d", len(installed), len(wantSets))
	}
	for _, s := range installed {
		w, ok := wantSets[s.Name]
		// google/nftables v0.3.0 reports a verdict map's key type as "verdict": skip it.
		keyOK := w.DataType.GetNFTMagic() == nftables.TypeVerdict.GetNFTMagic() || s.KeyType.Bytes == w.KeyType.Bytes
		if !ok || s.IsMap != w.IsMap || s.Interval != w.Interval || !keyOK {
			return nil, fmt.Errorf("set %s is not ours", s.Name)
		}
		if s.Name == famName(setServices, false) || s.Name == famName(setServices, true) {
			els, err := verdictElements(a.cfg.NetNS, s.Name)
			if err != nil {
				return nil, err
			}
			for _, e := range els {
				if _, ok := parseChain(e.Chain); !ok {
					return nil, fmt.Errorf("%s: element jumps to %q", s.Name, e.Chain)
				}
				st.add(s.Name, elem{Key: e.Key, Chain: e.Chain})
			}
			continue
		}
		els, err := a.conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("elements of %s: %w", s.Name, err)
		}
		if isBackends(s.Name) {
			if err := st.addSlots(els); err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
			continue
		}
		for _, e := range els {
			st.add(s.Name, elem{Key: e.Key, KeyEnd: e.KeyEnd, Val: e.Val})
		}
	}
	return st, nil
}

func sameHook(got, want *nftables.Chain) bool {
	if (got.Hooknum == nil) != (want.Hooknum == nil) {
		return false
	}
	if want.Hooknum == nil {
		return true
	}
	return *got.Hooknum == *want.Hooknum && got.Type == want.Type && got.Priority != nil && *got.Priority == *want.Priority
}

// addSlots decodes backend map elements into the state's tables.
func (s *state) addSlots(els []nftables.SetElement) error {
	for _, e := range els {
		if len(e.Key) < 4 {
			return fmt.Errorf("backend slot of %d bytes", len(e.Key))
		}
		f, err := decodeFrontend(e.Key[:len(e.Key)-4])
		if err != nil {
			return err
		}
		i := int(binaryutil.NativeEndian.Uint32(e.Key[len(e.Key)-4:]))
		if i > maxTableSize {
			return fmt.Errorf("backend slot index %d", i)
		}
		b, err := decodeBackend(e.Val)
		if err != nil {
			return err
		}
		t := s.tables[f]
		for len(t) <= i {
			t = append(t, netip.AddrPort{})
		}
		t[i] = b
		s.tables[f] = t
	}
	return nil
}

// maxTableSize bounds a table index read from the kernel (maglev tables are < 2^16).
const maxTableSize = 1 << 20
