package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	pkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// logAdapter is gobgp's logger, writing to our slog.Logger. It also remembers, per
// neighbor address, the last error gobgp logged for the session (NOTIFICATION sent or
// received, connect failure, why the session went down): gobgp's API has no such field,
// and its log is where it says why.
//
// gobgp is told the level is Debug so that it reports connect failures (logged at Debug);
// Debug messages reach slog only when slog has Debug enabled.
type logAdapter struct {
	log *slog.Logger

	mu      sync.Mutex
	lastErr map[string]string // neighbor address → last error
	// fresh: the last error is a NOTIFICATION of the current connection attempt. The
	// reason gobgp gives when that attempt ends ("notification-sent", "invalid-msg") says
	// less, and gobgp logs the two from different goroutines, in either order.
	fresh map[string]bool
	// onFailure, when set, is called (without the lock) after each error recorded.
	onFailure func(addr string)
}

var _ gobgplog.Logger = (*logAdapter)(nil)

func newLogAdapter(l *slog.Logger) *logAdapter {
	return &logAdapter{log: l.With("component", "gobgp"), lastErr: map[string]string{}, fresh: map[string]bool{}}
}

func (a *logAdapter) Panic(msg string, f gobgplog.Fields) {
	a.emit(slog.LevelError, msg, f)
	panic(msg)
}

func (a *logAdapter) Fatal(msg string, f gobgplog.Fields) {
	// gobgp calls Fatal only for unrecoverable internal errors; a library must not exit the
	// process on its own, so this logs and panics like Panic.
	a.emit(slog.LevelError, msg, f)
	panic(msg)
}

func (a *logAdapter) Error(msg string, f gobgplog.Fields) { a.emit(slog.LevelError, msg, f) }
func (a *logAdapter) Warn(msg string, f gobgplog.Fields)  { a.emit(slog.LevelWarn, msg, f) }
func (a *logAdapter) Info(msg string, f gobgplog.Fields)  { a.emit(slog.LevelInfo, msg, f) }
func (a *logAdapter) Debug(msg string, f gobgplog.Fields) { a.emit(slog.LevelDebug, msg, f) }

// SetLevel is ignored: the level is slog's.
func (a *logAdapter) SetLevel(gobgplog.LogLevel) {}

// GetLevel is Debug so that gobgp logs connect failures (see the type's comment).
func (a *logAdapter) GetLevel() gobgplog.LogLevel { return gobgplog.DebugLevel }

func (a *logAdapter) emit(level slog.Level, msg string, f gobgplog.Fields) {
	a.record(msg, f)
	if !a.log.Enabled(context.Background(), level) {
		return
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		name := k
		if k == "Key" && f["Topic"] == "Peer" {
			name = "peer"
		}
		args = append(args, name, fmt.Sprint(f[k]))
	}
	a.log.Log(context.Background(), level, msg, args...)
}

// record keeps the session errors gobgp logs.
func (a *logAdapter) record(msg string, f gobgplog.Fields) {
	if f["Topic"] != "Peer" {
		return
	}
	addr, _ := f["Key"].(string)
	if addr == "" {
		return
	}
	a.mu.Lock()
	failed := a.recordLocked(addr, msg, f)
	a.mu.Unlock()
	if failed && a.onFailure != nil {
		a.onFailure(addr)
	}
}

// recordLocked records the error a log line carries, if any, and reports whether it
// recorded one.
func (a *logAdapter) recordLocked(addr, msg string, f gobgplog.Fields) bool {
	switch msg {
	case "sent notification", "received notification":
		a.lastErr[addr] = msg + ": " + notificationText(f)
		a.fresh[addr] = true
		return true
	case "failed to connect":
		a.lastErr[addr] = fmt.Sprintf("connect: %v", f["Error"])
		a.fresh[addr] = false
		return true
	case "state changed":
		switch f["new"] {
		case "BGP_FSM_ACTIVE", "BGP_FSM_CONNECT":
			// A new connection attempt.
			a.fresh[addr] = false
			return false
		}
		reason := fmt.Sprint(f["reason"])
		if !isErrorReason(reason) {
			return false
		}
		if a.fresh[addr] && (strings.HasPrefix(reason, "notification-") || reason == "invalid-msg") {
			return false
		}
		e := "session down: " + reason
		if old := fmt.Sprint(f["old"]); reason == "invalid-msg" &&
			(old == "BGP_FSM_OPENSENT" || old == "BGP_FSM_OPENCONFIRM") {
			// gobgp drops a NOTIFICATION received before Established without logging it.
			e += " in " + strings.TrimPrefix(old, "BGP_FSM_") +
				" (the peer likely refused our OPEN with a NOTIFICATION: check both ASNs and the router's log)"
		}
		a.lastErr[addr] = e
		return true
	}
	return false
}

// isErrorReason tells the reasons gobgp gives for a state change that are errors (not
// the normal steps: timers expiring, connections opening, administrative actions).
func isErrorReason(r string) bool {
	for _, p := range []string{"notification-", "hold-timer-expired", "read-failed", "write-failed", "invalid-msg"} {
		if strings.HasPrefix(r, p) {
			return true
		}
	}
	return false
}

// notificationText renders a logged NOTIFICATION: its code and subcode by name, or the
// message error gobgp built it from, and an administrative communication if any.
func notificationText(f gobgplog.Fields) string {
	if d, ok := f["Data"].(error); ok && f["Code"] == nil {
		return d.Error()
	}
	code, _ := f["Code"].(uint8)
	sub, _ := f["Subcode"].(uint8)
	s := pkt.NewNotificationErrorCode(code, sub).String()
	if c, ok := f["Communicated-Reason"].(string); ok && c != "" {
		s += fmt.Sprintf(" (%q)", c)
	}
	return s
}

// lastError is the last error recorded for a neighbor address.
func (a *logAdapter) lastError(addr string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastErr[addr]
}

// forget drops what was recorded for a neighbor (when it is deleted).
func (a *logAdapter) forget(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.lastErr, addr)
	delete(a.fresh, addr)
}
