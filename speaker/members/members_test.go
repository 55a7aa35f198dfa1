package members

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/loadstone-lb/loadstone/internal/testwait"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// book is a shared address book standing in for Node InternalIPs.
type book struct {
	mu    sync.Mutex
	addrs map[string]string
}

func (b *book) set(name string, port int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addrs[name] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func (b *book) peers(context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, a := range b.addrs {
		out = append(out, a)
	}
	return out, nil
}

func start(t *testing.T, b *book, name string, key []byte, reg prometheus.Registerer) *Members {
	t.Helper()
	return startWith(t, b, name, key, reg, nil)
}

// startWith is start with a last change to the Config.
func startWith(t *testing.T, b *book, name string, key []byte, reg prometheus.Registerer, edit func(*Config)) *Members {
	t.Helper()
	timing := FastTiming()
	timing.RejoinInterval = 200 * time.Millisecond
	cfg := Config{
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer:    reg,
		NodeName:      name,
		BindAddr:      "127.0.0.1",
		AdvertiseAddr: "127.0.0.1",
		Key:           key,
		MACs:          []net.HardwareAddr{testMAC(name)},
		Peers:         b.peers,
		Timing:        timing,
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(); err != nil {
			t.Errorf("shutdown %s: %v", name, err)
		}
	})
	b.set(name, m.Port())
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFor polls; the deadline only bounds a failing test.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testwait.For(t, what, 20*time.Second, 20*time.Millisecond, cond)
}

func cluster(t *testing.T) (*book, []*Members) {
	b := &book{addrs: map[string]string{}}
	var ms []*Members
	for _, n := range []string{"n1", "n2", "n3"} {
		ms = append(ms, start(t, b, n, testKey, nil))
	}
	for _, m := range ms {
		waitFor(t, m.cfg.NodeName+" sees 3 alive", func() (bool, string) {
			a := m.Alive()
			return len(a) == 3, fmt.Sprint(a)
		})
	}
	return b, ms
}

// testMAC is a locally administered MAC derived from a member's name.
func testMAC(name string) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0, 0, 0, 0, name[len(name)-1]}
}

func TestJoinThroughDiscovery(t *testing.T) {
	_, ms := cluster(t)
	all := ms[0].All()
	if got := all["n2"]; got.State != StateAlive || len(got.MACs) != 1 || got.MACs[0].String() != testMAC("n2").String() {
		t.Errorf("n1's view of n2: %+v", got)
	}
}

func TestCrashDetected(t *testing.T) {
	_, ms := cluster(t)
	if err := ms[2].Shutdown(); err != nil { // no Leave: a crash as far as peers can tell
		t.Fatal(err)
	}
	for _, m := range ms[:2] {
		waitFor(t, m.cfg.NodeName+" sees n3 dead", func() (bool, string) {
			st := m.All()["n3"]
			return st.State == StateDead && !m.Alive()["n3"], st.State.String()
		})
	}
}

func TestGracefulStopLeaves(t *testing.T) {
	_, ms := cluster(t)
	if err := ms[2].Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:2] {
		waitFor(t, m.cfg.NodeName+" sees n3 left", func() (bool, string) {
			st := m.All()["n3"]
			return st.State == StateLeft && !m.Alive()["n3"], st.State.String()
		})
	}
}

func TestRestartedMemberRejoins(t *testing.T) {
	b, ms := cluster(t)
	if err := ms[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n1 sees n3 dead", func() (bool, string) {
		return ms[0].All()["n3"].State == StateDead, ""
	})
	before := ms[0].Arrivals()
	// n3 comes back on a new port, as a restarted speaker would; discovery finds it.
	start(t, b, "n3", testKey, nil)
	waitFor(t, "n1 sees n3 alive again", func() (bool, string) {
		return ms[0].Alive()["n3"], fmt.Sprint(ms[0].Alive())
	})
	if after := ms[0].Arrivals(); after <= before {
		t.Errorf("arrivals %d -> %d: the return of n3 was not counted", before, after)
	}
}

func TestWrongKeyDoesNotJoin(t *testing.T) {
	b, ms := cluster(t)
	reg := prometheus.NewRegistry()
	other := start(t, b, "intruder", []byte("fedcba9876543210fedcba9876543210"), reg)
	// Wait until the intruder has tried (and failed) to join at least twice.
	waitFor(t, "intruder join attempts fail", func() (bool, string) {
		v := counter(t, reg, "loadstone_speaker_members_join_errors_total")
		return v >= 2, fmt.Sprint(v)
	})
	if ms[0].Alive()["intruder"] || len(other.Alive()) != 1 {
		t.Errorf("a member with another key joined: n1 sees %v, intruder sees %v", ms[0].Alive(), other.Alive())
	}
}

func TestBadKeyLength(t *testing.T) {
	_, err := Start(t.Context(), Config{NodeName: "x", BindAddr: "127.0.0.1", Key: []byte("short")})
	if err == nil || !strings.Contains(err.Error(), "16, 24 or 32") {
		t.Fatalf("err = %v", err)
	}
}

func TestDegradedWhenNoPeerReachable(t *testing.T) {
	reg := prometheus.NewRegistry()
	timing := FastTiming()
	timing.RejoinInterval = 100 * time.Millisecond
	timing.StartupGrace = 300 * time.Millisecond
	// A peer address nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	m, err := Start(t.Context(), Config{NodeName: "lonely", BindAddr: "127.0.0.1", AdvertiseAddr: "127.0.0.1",
		Key: testKey, Registerer: reg, Timing: timing,
		Peers: func(context.Context) ([]string, error) { return []string{dead}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	if m.Degraded() {
		t.Fatal("degraded before the startup grace")
	}
	waitFor(t, "degraded", func() (bool, string) { return m.Degraded(), "" })
	if v := gauge(t, reg, "loadstone_speaker_members_degraded"); v != 1 {
		t.Errorf("degraded gauge = %v", v)
	}
}

func find(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) > 0 {
			return mf.Metric[0]
		}
	}
	return &dto.Metric{}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return find(t, reg, name).GetCounter().GetValue()
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return find(t, reg, name).GetGauge().GetValue()
}

func TestSlogWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &slogWriter{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	fmt.Fprint(w, "[WARN] memberlist: Was able to connect to n2 over TCP but UDP probes failed\n[DEBUG] memberlist: Stream connection\n")
	out := buf.String()
	if !strings.Contains(out, "level=WARN msg=\"Was able to connect") || !strings.Contains(out, "level=DEBUG msg=\"Stream connection\"") {
		t.Errorf("adapted log:\n%s", out)
	}
}
