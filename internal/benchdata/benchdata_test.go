package benchdata

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestAppendWritesJSONLines(t *testing.T) {
	t.Setenv(Env, "")
	if err := Append("x", 1); err != nil {
		t.Fatalf("without a directory: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	t.Setenv(Env, dir)
	for i := 1; i <= 2; i++ {
		if err := Append("b6", B6{Services: i * 1000, CPUMsPerService: 0.5}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "b6.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []B6
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r B6
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[1].Services != 2000 || got[0].CPUMsPerService != 0.5 {
		t.Errorf("read back %+v", got)
	}
	if err := Append("bad", func() {}); err == nil {
		t.Error("a value JSON cannot encode was accepted")
	}
}

func TestAppendB2RoundTrips(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(Env, dir)
	in := B2{Case: "speaker, BFD", Nexthops: 3, RecoveryMs: []float64{250.5}, WithdrawalMs: []float64{260},
		FailedConnects: []int{80}, Timeline: []TimelinePoint{{Ms: 0, OKFraction: 0.66, Probes: 10}}}
	if err := Append("b2", in); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "b2.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out B2
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Case != in.Case || out.Nexthops != 3 || out.RecoveryMs[0] != 250.5 || out.FailedConnects[0] != 80 || out.Timeline[0].OKFraction != 0.66 {
		t.Errorf("read back %+v", out)
	}
}
