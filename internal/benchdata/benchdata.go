package benchdata

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Env names the directory records go to.
const Env = "LOADSTONE_BENCH_DATA"

// Append writes v as one JSON line to <dir>/<name>.jsonl, if the directory is set.
func Append(name string, v any) error {
	dir := os.Getenv(Env)
	if dir == "" {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("benchdata: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("benchdata: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("benchdata: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("benchdata: %w", err)
	}
	return f.Close()
}

// B6 is one end-to-end allocation run.
type B6 struct {
	Services        int     `json:"services"`
	FloorSeconds    float64 `json:"floor_s"`
	LoadstoneSecs   float64 `json:"loadstone_s"`
	CPUMsPerService float64 `json:"cpu_ms_per_service"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
}

// B1 is one failover case over all its runs.
type B1 struct {
	Case       string    `json:"case"`
	GapMs      []float64 `json:"gap_ms"`
	HandoverMs []float64 `json:"handover_ms"`
	// Timeline: the share of connects that succeeded, by when they started (bucket start,
	// ms after the failure), over all runs.
	Timeline []TimelinePoint `json:"timeline"`
}

// TimelinePoint is one bucket of a failover timeline.
type TimelinePoint struct {
	Ms         float64 `json:"t_ms"`
	OKFraction float64 `json:"ok_fraction"`
	Probes     int     `json:"probes"`
}

// B9 is one BGP scale case (a speaker announcing to a router) over all its runs.
type B9 struct {
	Case     string `json:"case"`
	Prefixes int    `json:"prefixes"`
	// Per run: Apply → all installed in the router's kernel, Apply → none left.
	InstallMs  []float64 `json:"install_ms"`
	WithdrawMs []float64 `json:"withdraw_ms"`
	// Per run: the speaker's CPU seconds while announcing and while withdrawing, and its
	// peak RSS.
	CPUAnnounceS []float64 `json:"cpu_announce_s"`
	CPUWithdrawS []float64 `json:"cpu_withdraw_s"`
	PeakRSSMiB   []float64 `json:"peak_rss_mib"`
}

// B2 is one BGP failover case (a silent link cut of one node announcing an IP by ECMP)
// over all its runs.
type B2 struct {
	Case string `json:"case"`
	// Nexthops is how many nodes announced the IP before the cut.
	Nexthops int `json:"nexthops"`
	// Per run: cut → start of the last failed connect (traffic flows again after it; 0
	// when no connect failed), and cut → the router's kernel route no longer names the
	// cut node.
	RecoveryMs   []float64 `json:"recovery_ms"`
	WithdrawalMs []float64 `json:"withdrawal_ms"`
	// FailedConnects per run, after the cut.
	FailedConnects []int `json:"failed_connects"`
	// Timeline: the share of connects that succeeded, by when they started (bucket start,
	// ms after the cut), over all runs.
	Timeline []TimelinePoint `json:"timeline"`
}
