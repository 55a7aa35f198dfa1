package v1beta1

// The condition the controller writes on the Services it serves (in
// Service.status.conditions, next to other controllers' conditions, which it leaves
// alone): why a Service has its load balancer IPs, or why it has not.
const (
	// ConditionIPAllocated is True when the Service holds the addresses its request asks
	// for, False when the request cannot be met (the message says why and what the
	// Service keeps meanwhile, if anything).
	ConditionIPAllocated = "loadstone.io/IPAllocated"

	// ReasonAllocated: the Service holds what it asks for (True).
	ReasonAllocated = "Allocated"
	// ReasonPoolExhausted: every pool the Service may use offers its families but has no
	// free address.
	ReasonPoolExhausted = "PoolExhausted"
	// ReasonIPInUse: a requested IP is held by another Service it may not share with (the
	// message names it).
	ReasonIPInUse = "IPInUse"
	// ReasonNoMatchingPool: no pool can serve the Service: none admits it, the requested
	// pool does not exist, admits it not or is being deleted, a requested IP is in no pool,
	// or no pool it may use has a family it needs.
	ReasonNoMatchingPool = "NoMatchingPool"
	// ReasonInvalidRequest: the request itself is wrong: an unparsable or special-purpose
	// requested IP, two of one family, a family the Service does not have, or requests
	// that contradict each other.
	ReasonInvalidRequest = "InvalidRequest"
)
