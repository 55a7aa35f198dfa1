package v1beta1

// Condition types and reasons that Loadstone sets on its configuration objects.
const (
	// ConditionValid is True when the object passed every check, including the cross-object
	// ones of package api/model, and its current spec is in force. When it is False the
	// message says what is wrong, and the last good version of the object (if there was one)
	// stays in force. "In force" means in the configuration the controller and speaker
	// build; whether a node managed to carry it out is reported per node (ServiceL2Status,
	// BGPSessionStatus).
	ConditionValid = "Valid"

	// ReasonValid is the reason of a True Valid condition.
	ReasonValid = "Valid"
	// ReasonInvalid is the reason of a False Valid condition when no earlier version of the
	// object is in force either.
	ReasonInvalid = "Invalid"
	// ReasonLastGoodInForce is the reason of a False Valid condition when the object's last
	// good version stays in force in place of the current spec.
	ReasonLastGoodInForce = "LastGoodInForce"

	// ConditionAddressesExcluded is set on every IPAddressPool in force: True when some of
	// its addresses are special-purpose and never handed out (unspecified, loopback,
	// link-local, multicast, limited broadcast, or the subnet-router anycast address of an
	// IPv6 CIDR of length 126 or less), with the message listing them; False when there is
	// none. The pool stays usable without them, and its counts leave them out.
	ConditionAddressesExcluded = "AddressesExcluded"
	// ReasonSpecialPurpose is the reason of a True AddressesExcluded condition.
	ReasonSpecialPurpose = "SpecialPurpose"
	// ReasonNoneExcluded is the reason of a False AddressesExcluded condition.
	ReasonNoneExcluded = "NoneExcluded"

	// ConditionDeletionBlocked is set on an IPAddressPool that is being deleted while
	// Services still hold its addresses (see FinalizerPoolProtection): True, reason InUse,
	// the message naming the holders. The pool goes away once the last one releases.
	ConditionDeletionBlocked = "DeletionBlocked"
	// ReasonInUse is the reason of a True DeletionBlocked condition.
	ReasonInUse = "InUse"
)
