package ipam

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
)

// Reason says why an allocation failed. Its string form is the Event reason and the
// metric label.
type Reason string

// Failure reasons.
const (
	// ReasonPoolExhausted: every pool the Service may use offers its families but has no
	// free address.
	ReasonPoolExhausted Reason = "PoolExhausted"
	// ReasonIPInUse: a requested IP is used by another Service it may not share with.
	ReasonIPInUse Reason = "IPInUse"
	// ReasonIPNotInPool: a requested IP lies in no pool (or is excluded by avoidBuggyIPs).
	ReasonIPNotInPool Reason = "IPNotInPool"
	// ReasonFamilyNotOffered: no pool the Service may use has addresses of a family it
	// needs.
	ReasonFamilyNotOffered Reason = "FamilyNotOffered"
	// ReasonConflictingRequests: the Service's requests contradict each other
	// (spec.loadBalancerIP and the annotation both set, requested IPs in two pools, a
	// requested IP outside the requested pool, RequireDualStack with one requested IP).
	ReasonConflictingRequests Reason = "ConflictingRequests"
	// ReasonInvalidRequest: an annotation or spec.loadBalancerIP cannot be parsed, names
	// an IP of a family the Service does not have, or names a special-purpose address
	// (SpecialPurpose, Excluded).
	ReasonInvalidRequest Reason = "InvalidRequest"
	// ReasonPoolNotFound: the requested pool does not exist.
	ReasonPoolNotFound Reason = "PoolNotFound"
	// ReasonPoolNotAllowed: the requested pool (or the pool of a requested IP) excludes the
	// Service by its serviceAllocation.
	ReasonPoolNotAllowed Reason = "PoolNotAllowed"
	// ReasonNoPool: no auto-assign pool serves the Service.
	ReasonNoPool Reason = "NoPool"
	// ReasonPoolTerminating: the requested pool, or the pool of a requested IP, is being
	// deleted (SetTerminating) and hands out nothing new.
	ReasonPoolTerminating Reason = "PoolTerminating"
)

// AllReasons lists every Reason, for metrics.
func AllReasons() []Reason {
	return []Reason{
		ReasonPoolExhausted, ReasonIPInUse, ReasonIPNotInPool, ReasonFamilyNotOffered,
		ReasonConflictingRequests, ReasonInvalidRequest, ReasonPoolNotFound,
		ReasonPoolNotAllowed, ReasonNoPool, ReasonPoolTerminating,
	}
}

// Error is an allocation failure.
type Error struct {
	Reason Reason
	// InUseBy is the Service holding the IP, for ReasonIPInUse.
	InUseBy types.NamespacedName
	// Message is the human-readable detail.
	Message string
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Message }

func errorf(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of err, or "" if err is not an *Error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
