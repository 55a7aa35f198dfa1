package nft

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
	"k8s.io/utils/clock"

	"github.com/loadstone-lb/loadstone/dataplane/plan"
)

// Conn is the part of *nftables.Conn the applier uses; tests wrap it to inject failures.
type Conn interface {
	AddTable(*nftables.Table) *nftables.Table
	DelTable(*nftables.Table)
	AddChain(*nftables.Chain) *nftables.Chain
	DelChain(*nftables.Chain)
	AddRule(*nftables.Rule) *nftables.Rule
	AddSet(*nftables.Set, []nftables.SetElement) error
	SetAddElements(*nftables.Set, []nftables.SetElement) error
	SetDeleteElements(*nftables.Set, []nftables.SetElement) error
	AddObj(nftables.Obj) nftables.Obj
	GetObjects(*nftables.Table) ([]nftables.Obj, error)
	ListChainsOfTableFamily(nftables.TableFamily) ([]*nftables.Chain, error)
	GetSets(*nftables.Table) ([]*nftables.Set, error)
	GetSetElements(*nftables.Set) ([]nftables.SetElement, error)
	Flush() error
}

var _ Conn = (*nftables.Conn)(nil)

// DefaultSeed is the jhash seed of the flow hash. It must be the same on every node (a
// random seed, nftables' default, would make each node pick a different backend).
const DefaultSeed = 0x4c530001

// DefaultMarkBit is the packet-mark bit that tells our postrouting chain to masquerade a
// new connection (kube-proxy uses 0x4000 and 0x8000). It is cleared there.
const DefaultMarkBit = 0x00200000

// DefaultBatchSize bounds the elements sent in one netlink batch: about 2000 in one
// message gets "message too long" (FIELD-NOTES).
const DefaultBatchSize = 1000

// receiveBuffer is the netlink receive buffer: with the default, Flush of a large batch
// reports "no buffer space" although the kernel applied it. The send buffer gets the
// same size, so that a batch of BatchSize elements fits in one sendmsg.
const receiveBuffer = 1 << 20

// Config configures an Applier.
type Config struct {
	// Conn talks to nftables; nil opens one in NetNS (0: the current namespace) with a
	// 1 MiB receive buffer. An injected Conn must talk to NetNS: a full sync lists the
	// services verdict maps through its own netlink socket in NetNS.
	Conn  Conn
	NetNS int
	// Seed is the jhash seed, fixed cluster-wide; 0 means DefaultSeed.
	Seed uint32
	// MarkBit is the packet-mark bit for masquerade; 0 means DefaultMarkBit. It must
	// be a single bit that no other component on the node uses.
	MarkBit uint32
	// BatchSize bounds the elements per netlink batch; 0 means DefaultBatchSize.
	BatchSize  int
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Clock times syncs for the duration metric; nil means the real clock.
	Clock clock.PassiveClock
}

// Applier installs plans into the table `inet loadstone`. It is safe for concurrent use,
// but syncs are serialised.
type Applier struct {
	cfg     Config
	conn    Conn
	log     *slog.Logger
	clock   clock.PassiveClock
	metrics *metrics

	mu sync.Mutex
	// applied is what the last successful sync installed; nil means the kernel's state
	// is unknown (start, failure, Resync, Remove) and the next Apply is a full sync.
	applied *state
	// last counter values read, to turn them into Prometheus counter increments.
	lastRejected, lastDropped uint64
}

// New returns an Applier; nothing is installed until the first Apply.
func New(cfg Config) (*Applier, error) {
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	if cfg.MarkBit == 0 {
		cfg.MarkBit = DefaultMarkBit
	}
	if cfg.MarkBit&(cfg.MarkBit-1) != 0 {
		return nil, fmt.Errorf("mark bit %#x is not a single bit", cfg.MarkBit)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	a := &Applier{cfg: cfg, conn: cfg.Conn, log: cfg.Logger, clock: cfg.Clock, metrics: newMetrics(cfg.Registerer)}
	if a.conn == nil {
		c, err := Dial(cfg.NetNS)
		if err != nil {
			return nil, err
		}
		a.conn = c
	}
	return a, nil
}

// Dial opens an nftables connection in the network namespace fd (0: the current one)
// with a 1 MiB netlink receive buffer.
func Dial(netns int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(c *netlink.Conn) error {
		if err := c.SetReadBuffer(receiveBuffer); err != nil {
			return err
		}
		return c.SetWriteBuffer(receiveBuffer)
	})}
	if netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// Resync makes the next Apply a full sync (the caller asks periodically).
func (a *Applier) Resync() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied = nil
}

// Apply installs p. The first call, the first after Resync, Remove or any failure,
// rebuilds the whole table; the others send only the elements that changed since the
// last successful Apply. On error the kernel may hold part of p; the next Apply repairs
// that with a full sync.
func (a *Applier) Apply(p plan.Plan) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	start := a.clock.Now()
	full := a.applied == nil
	kind := "partial"
	if full {
		kind = "full"
	}
	a.readCounters()
	want := desired(p)
	var err error
	if full {
		err = a.resync(want)
	} else {
		err = a.partial(want)
	}
	a.metrics.duration.WithLabelValues(kind).Observe(a.clock.Since(start).Seconds())
	if err != nil {
		a.applied = nil
		a.metrics.failures.Inc()
		return fmt.Errorf("dataplane %s sync: %w", kind, err)
	}
	a.applied = want
	for k, n := range want.count() {
		a.metrics.objects.WithLabelValues(k).Set(float64(n))
	}
	return nil
}

// Remove deletes the table `inet loadstone` and everything in it (uninstall, or every
// service in mode off). It succeeds when there is no table.
func (a *Applier) Remove() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.readCounters()
	a.applied = nil
	a.lastRejected, a.lastDropped = 0, 0
	// Adding first makes the delete valid whether or not the table exists.
	a.conn.AddTable(table)
	a.conn.DelTable(table)
	if err := a.conn.Flush(); err != nil {
		return fmt.Errorf("delete table inet %s: %w", TableName, err)
	}
	for k := range a.metrics.known {
		a.metrics.objects.WithLabelValues(k).Set(0)
	}
	return nil
}

// resync is a full sync. When the table is there with the expected chains, rules
// (compared by the fingerprint each rule carries in its comment), sets and counters, it
// lists every element back and sends the difference: nothing changes for traffic. When
// anything is missing or foreign, it rebuilds the table.
func (a *Applier) resync(want *state) error {
	have, err := a.kernelState()
	if err != nil {
		a.log.Info("rebuilding nftables table", "table", TableName, "reason", err.Error())
		return a.rebuild(want)
	}
	a.applied = have
	return a.partial(want)
}

// rebuild replaces the table in one batch (add, delete, add: valid whether it exists or
// not), then adds the elements in batches. Existing connections keep their NAT through
// conntrack; new ones see a table filling up for the duration of the element batches.
func (a *Applier) rebuild(want *state) error {
	a.lastRejected, a.lastDropped = 0, 0
	c := a.conn
	c.AddTable(table)
	c.DelTable(table)
	c.AddTable(table)
	c.AddObj(&nftables.CounterObj{Table: table, Name: counterRejected})
	c.AddObj(&nftables.CounterObj{Table: table, Name: counterSourceRange})
	ss := sets()
	for _, name := range slices.Sorted(maps.Keys(ss)) {
		if err := c.AddSet(ss[name], nil); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	for _, d := range a.chainDefs(slices.Collect(maps.Values(want.chains)), true) {
		a.addChain(d)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("create table inet %s: %w", TableName, err)
	}
	return a.send(diff(newState(), want))
}

// chainDef is a chain and its rules.
type chainDef struct {
	chain nftables.Chain
	rules [][]expr.Any
}

// chainDefs lists the Maglev chains of cs and, with static, the static chains, regular
// chains before the base chains that jump to them.
func (a *Applier) chainDefs(cs []chainSpec, static bool) []chainDef {
	slices.SortFunc(cs, func(x, y chainSpec) int { return strings.Compare(x.name(), y.name()) })
	var out []chainDef
	if static {
		fw := chainDef{chain: nftables.Chain{Name: chainFirewall}}
		svc := chainDef{chain: nftables.Chain{Name: chainServices}}
		for _, v6 := range []bool{false, true} {
			fw.rules = append(fw.rules, firewallRules(v6)...)
			svc.rules = append(svc.rules, servicesRule(v6))
		}
		out = append(out, fw, svc)
	}
	for _, c := range cs {
		out = append(out, chainDef{chain: nftables.Chain{Name: c.name()}, rules: maglevRules(c, a.cfg.Seed, a.cfg.MarkBit)})
	}
	if static {
		for _, b := range baseChains {
			prio := nftables.ChainPriority(b.prio)
			d := chainDef{chain: nftables.Chain{Name: b.name, Type: b.typ, Hooknum: b.hook, Priority: &prio}}
			if b.target != "" {
				d.rules = [][]expr.Any{{&expr.Verdict{Kind: expr.VerdictJump, Chain: b.target}}}
			} else {
				for _, v6 := range []bool{false, true} {
					d.rules = append(d.rules, masqueradeRule(v6, a.cfg.MarkBit))
				}
			}
			out = append(out, d)
		}
	}
	return out
}

func (a *Applier) addChain(d chainDef) {
	ch := d.chain
	ch.Table = table
	added := a.conn.AddChain(&ch)
	for _, r := range d.rules {
		a.conn.AddRule(&nftables.Rule{Table: table, Chain: added, Exprs: r,
			UserData: userdata.AppendString(nil, userdata.TypeComment, fingerprint(r))})
	}
}

// fingerprint names a rule by a hash of its netlink encoding; it is the rule's comment,
// so a full sync can tell whether the installed rules are ours and current.
func fingerprint(r []expr.Any) string {
	h := sha256.New()
	for _, e := range r {
		b, err := expr.Marshal(unix.NFPROTO_INET, e)
		if err != nil {
			b = []byte(fmt.Sprintf("%T", e))
		}
		h.Write(b)
	}
	return "loadstone " + hex.EncodeToString(h.Sum(nil)[:8])
}

func (a *Applier) addMaglevChains(cs []chainSpec) {
	for _, d := range a.chainDefs(cs, false) {
		a.addChain(d)
	}
}

// partial creates the Maglev chains that are new, sends the element changes, then
// deletes the Maglev chains nothing points at any more.
func (a *Applier) partial(want *state) error {
	var fresh []chainSpec
	for name, cs := range want.chains {
		if _, ok := a.applied.chains[name]; !ok {
			fresh = append(fresh, cs)
		}
	}
	if len(fresh) > 0 {
		a.addMaglevChains(fresh)
		if err := a.conn.Flush(); err != nil {
			return fmt.Errorf("add Maglev chains: %w", err)
		}
	}
	if err := a.send(diff(a.applied, want)); err != nil {
		return err
	}
	stale := 0
	for _, name := range slices.Sorted(maps.Keys(a.applied.chains)) {
		if _, ok := want.chains[name]; !ok {
			a.conn.DelChain(&nftables.Chain{Name: name, Table: table})
			stale++
		}
	}
	if stale > 0 {
		if err := a.conn.Flush(); err != nil {
			return fmt.Errorf("delete %d unused Maglev chains: %w", stale, err)
		}
	}
	return nil
}

type opKind int

const (
	opAdd opKind = iota
	opDelete
	opReplace // delete and add of the same key, always in the same batch
)

type item struct {
	set      string
	kind     opKind
	old, new elem
}

func (it item) cost() int {
	if it.kind == opReplace {
		return 2
	}
	return 1
}

// Phases order the changes so that no packet meets a half-built service: first what
// the switch points at (tables, IDs, allowed ranges, masquerade data), then the switch
// (frontends, reject, ranged), then the removals, switches first.
var (
	phaseData   = []string{setBackends, setAllowed, setRemote, setMasquerade}
	phaseSwitch = []string{setServices, setReject, setRanged}
	phaseDrop   = []string{setReject, setServices, setRanged, setAllowed, setMasquerade, setRemote, setBackends}
)

// diff lists the element changes from have to want, in phase order.
func diff(have, want *state) []item {
	var out []item
	adds := func(bases []string) {
		for _, base := range bases {
			if base == setBackends {
				out = append(out, tableAdds(have, want)...)
				continue
			}
			for _, v6 := range []bool{false, true} {
				name := famName(base, v6)
				h, w := have.sets[name], want.sets[name]
				// Map order: the order within a set does not matter.
				for id, we := range w {
					he, ok := h[id]
					switch {
					case !ok:
						out = append(out, item{set: name, kind: opAdd, new: we})
					case !he.equal(we):
						out = append(out, item{set: name, kind: opReplace, old: he, new: we})
					}
				}
			}
		}
	}
	adds(phaseData)
	adds(phaseSwitch)
	for _, base := range phaseDrop {
		if base == setBackends {
			out = append(out, tableDrops(have, want)...)
			continue
		}
		for _, v6 := range []bool{false, true} {
			name := famName(base, v6)
			h, w := have.sets[name], want.sets[name]
			for id, he := range h {
				if _, ok := w[id]; !ok {
					out = append(out, item{set: name, kind: opDelete, old: he})
				}
			}
		}
	}
	return out
}

func slotElem(f plan.Frontend, i int, b netip.AddrPort) elem {
	return elem{Key: encodeSlot(f, i), Val: encodeBackend(b)}
}

// tableAdds: entries of want's tables that are missing or different in have's. An
// unchanged table costs one comparison and no elements.
func tableAdds(have, want *state) []item {
	var out []item
	for f, wt := range want.tables {
		ht := have.tables[f]
		if slices.Equal(ht, wt) {
			continue
		}
		set := famName(setBackends, f.Addr.Is6())
		for i, b := range wt {
			switch {
			case i >= len(ht) || !ht[i].IsValid():
				out = append(out, item{set: set, kind: opAdd, new: slotElem(f, i, b)})
			case ht[i] != b:
				out = append(out, item{set: set, kind: opReplace, old: slotElem(f, i, ht[i]), new: slotElem(f, i, b)})
			}
		}
	}
	return out
}

// tableDrops: entries of have's tables beyond want's (a smaller or removed table).
func tableDrops(have, want *state) []item {
	var out []item
	for f, ht := range have.tables {
		wt := want.tables[f]
		if len(ht) <= len(wt) {
			continue
		}
		set := famName(setBackends, f.Addr.Is6())
		for i := len(wt); i < len(ht); i++ {
			if ht[i].IsValid() {
				out = append(out, item{set: set, kind: opDelete, old: slotElem(f, i, ht[i])})
			}
		}
	}
	return out
}

// send packs the items into batches of at most BatchSize elements and flushes each.
func (a *Applier) send(items []item) error {
	ss := sets()
	var batch []item
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := a.queue(ss, batch); err != nil {
			return err
		}
		if err := a.conn.Flush(); err != nil {
			return fmt.Errorf("element batch of %d: %w", n, err)
		}
		batch, n = batch[:0], 0
		return nil
	}
	for _, it := range items {
		if n+it.cost() > a.cfg.BatchSize {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, it)
		n += it.cost()
	}
	return flush()
}

// queue adds one batch's messages, grouping consecutive items of one set and kind.
func (a *Applier) queue(ss map[string]*nftables.Set, batch []item) error {
	for i := 0; i < len(batch); {
		j := i
		for j < len(batch) && batch[j].set == batch[i].set && batch[j].kind == batch[i].kind {
			j++
		}
		set := ss[batch[i].set]
		var olds, news []nftables.SetElement
		for _, it := range batch[i:j] {
			if it.kind != opAdd {
				olds = append(olds, wire(it.old))
			}
			if it.kind != opDelete {
				news = append(news, wire(it.new))
			}
		}
		for _, part := range split(olds) {
			if err := a.conn.SetDeleteElements(set, part); err != nil {
				return fmt.Errorf("delete from %s: %w", set.Name, err)
			}
		}
		for _, part := range split(news) {
			if err := a.conn.SetAddElements(set, part); err != nil {
				return fmt.Errorf("add to %s: %w", set.Name, err)
			}
		}
		i = j
	}
	return nil
}

// maxListBytes bounds the encoded size of one message's element list. The list is one
// netlink attribute, whose length field has 16 bits: google/nftables does not check,
// and a longer list wraps the length, so the kernel silently applies only its head
// (seen with 1000 IPv6 backend entries in one message).
const maxListBytes = 48 << 10

// split cuts els into parts whose encoded element lists stay under maxListBytes.
func split(els []nftables.SetElement) [][]nftables.SetElement {
	var out [][]nftables.SetElement
	start, size := 0, 0
	for i, e := range els {
		// Generous per-element estimate: the attribute headers of the element, key,
		// key end, data and verdict, plus their payloads.
		n := 64 + len(e.Key) + len(e.KeyEnd) + len(e.Val)
		if e.VerdictData != nil {
			n += 32 + len(e.VerdictData.Chain)
		}
		if size+n > maxListBytes && i > start {
			out = append(out, els[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(els) {
		out = append(out, els[start:])
	}
	return out
}

func wire(e elem) nftables.SetElement {
	se := nftables.SetElement{Key: e.Key, KeyEnd: e.KeyEnd, Val: e.Val}
	if e.Chain != "" {
		se.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.Chain}
	}
	return se
}

// readCounters turns the table's packet counters into metric increments. A counter
// below its last value was recreated by a full sync: all of it is new.
func (a *Applier) readCounters() {
	objs, err := a.conn.GetObjects(table)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			a.log.Debug("read nftables counters", "err", err)
		}
		return
	}
	for _, o := range objs {
		name, pkts, ok := counterOf(o)
		if !ok {
			continue
		}
		switch name {
		case counterRejected:
			a.metrics.rejected.Add(float64(delta(&a.lastRejected, pkts)))
		case counterSourceRange:
			a.metrics.droppedSourceRange.Add(float64(delta(&a.lastDropped, pkts)))
		}
	}
}

func delta(last *uint64, now uint64) uint64 {
	d := now
	if now >= *last {
		d = now - *last
	}
	*last = now
	return d
}

func counterOf(o nftables.Obj) (string, uint64, bool) {
	switch c := o.(type) {
	case *nftables.CounterObj:
		return c.Name, c.Packets, true
	case *nftables.NamedObj:
		if ce, ok := c.Obj.(*expr.Counter); ok {
			return c.Name, ce.Packets, true
		}
	}
	return "", 0, false
}
