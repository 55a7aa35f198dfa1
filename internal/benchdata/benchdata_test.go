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
