package nodeagent

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTailOffset(t *testing.T) {
	long := strings.Repeat("x", 40*1024) // longer than one read chunk
	for _, tc := range []struct {
		name string
		data string
		n    int64
		want string
	}{
		{"empty", "", 3, ""},
		{"zero lines", "a\nb\n", 0, ""},
		{"last line", "a\nb\nc\n", 1, "c\n"},
		{"two lines", "a\nb\nc\n", 2, "b\nc\n"},
		{"all lines", "a\nb\nc\n", 3, "a\nb\nc\n"},
		{"more than there are", "a\nb\nc\n", 10, "a\nb\nc\n"},
		{"no final newline", "a\nb\nc", 1, "c"},
		{"no final newline, two", "a\nb\nc", 2, "b\nc"},
		{"empty lines count", "a\n\n\n", 2, "\n\n"},
		{"single line no newline", "abc", 1, "abc"},
		{"across chunks", "first\n" + long + "\nlast\n", 2, long + "\nlast\n"},
		{"across chunks, all", "first\n" + long + "\nlast\n", 3, "first\n" + long + "\nlast\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := strings.NewReader(tc.data)
			off, err := TailOffset(r, int64(len(tc.data)), tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.data[off:]; got != tc.want {
				t.Errorf("TailOffset(%d) gives %q, want %q", tc.n, trunc(got), trunc(tc.want))
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:20] + "..." + s[len(s)-20:]
	}
	return s
}

func TestParseLogOptions(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name    string
		query   string
		want    LogOptions
		wantErr bool
	}{
		{name: "none", query: ""},
		{name: "as the API server sends them", query: "follow=true&previous=true&timestamps=true&tailLines=10&limitBytes=500",
			want: LogOptions{Follow: true, Previous: true, Timestamps: true, TailLines: i(10), LimitBytes: i(500)}},
		{name: "false", query: "follow=false", want: LogOptions{}},
		{name: "tail zero", query: "tailLines=0", want: LogOptions{TailLines: i(0)}},
		{name: "since ignored", query: "sinceSeconds=10&sinceTime=2026-01-01T00:00:00Z", want: LogOptions{}},
		{name: "bad bool", query: "follow=maybe", wantErr: true},
		{name: "negative tail", query: "tailLines=-1", wantErr: true},
		{name: "zero limit", query: "limitBytes=0", wantErr: true},
		{name: "bad number", query: "tailLines=ten", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseLogOptions(q)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" && !tc.wantErr {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKubeletRequestAttributes(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         KubeletAttributes
	}{
		{"GET", "/containerLogs/default/web/app", KubeletAttributes{"get", "proxy"}},
		{"POST", "/exec/default/web/app", KubeletAttributes{"create", "proxy"}},
		{"GET", "/exec/default/web/app", KubeletAttributes{"get", "proxy"}},
		{"POST", "/attach/default/web/uid/app", KubeletAttributes{"create", "proxy"}},
		{"POST", "/portForward/default/web", KubeletAttributes{"create", "proxy"}},
		{"GET", "/healthz", KubeletAttributes{"get", "proxy"}},
		{"HEAD", "/stats/summary", KubeletAttributes{"get", "stats"}},
		{"GET", "/metrics", KubeletAttributes{"get", "metrics"}},
		{"GET", "/metrics/cadvisor", KubeletAttributes{"get", "metrics"}},
		{"GET", "/logs/syslog", KubeletAttributes{"get", "log"}},
		{"GET", "/spec/", KubeletAttributes{"get", "spec"}},
		{"POST", "/checkpoint/default/web/app", KubeletAttributes{"create", "checkpoint"}},
		{"GET", "/statsx", KubeletAttributes{"get", "proxy"}},
		{"PUT", "/x", KubeletAttributes{"update", "proxy"}},
		{"PATCH", "/x", KubeletAttributes{"patch", "proxy"}},
		{"DELETE", "/x", KubeletAttributes{"delete", "proxy"}},
	} {
		if got := KubeletRequestAttributes(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: %+v, want %+v", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestTimestampWriter(t *testing.T) {
	var out bytes.Buffer
	at := time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC)
	w := &timestampWriter{w: &out, now: func() time.Time { return at }}
	for _, chunk := range []string{"one\ntw", "o\n", "", "three\nfour"} {
		n, err := w.Write([]byte(chunk))
		if err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	ts := "2026-12-01T10:00:00.000000005Z "
	want := ts + "one\n" + ts + "two\n" + ts + "three\n" + ts + "four"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestLimitWriter(t *testing.T) {
	var out bytes.Buffer
	w := &limitWriter{w: &out, n: 5}
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("first write: %d, %v", n, err)
	}
	if n, err := w.Write([]byte("defg")); n != 2 || !errors.Is(err, errLimitReached) {
		t.Fatalf("second write: %d, %v", n, err)
	}
	if n, err := w.Write([]byte("h")); n != 0 || !errors.Is(err, errLimitReached) {
		t.Fatalf("third write: %d, %v", n, err)
	}
	if out.String() != "abcde" {
		t.Errorf("got %q", out.String())
	}
}

func TestExitCodeError(t *testing.T) {
	err := exitCodeError(&ExitError{Code: 7})
	var ce interface {
		Exited() bool
		ExitStatus() int
	}
	if !errors.As(err, &ce) || !ce.Exited() || ce.ExitStatus() != 7 {
		t.Fatalf("exitCodeError: %#v", err)
	}
	other := errors.New("boom")
	if got := exitCodeError(other); got != other { //nolint:errorlint // identity is the point
		t.Errorf("other errors change: %v", got)
	}
}
