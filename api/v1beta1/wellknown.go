package v1beta1

// Names that Loadstone reads from or writes to objects it does not own (Services, Nodes).
const (
	// LoadBalancerClass is the spec.loadBalancerClass that selects Loadstone. Services with
	// no class are served too, unless the controller runs with --require-class.
	LoadBalancerClass = "loadstone.io/lb"

	// AnnotationAddressPool asks for an IP from the named IPAddressPool.
	AnnotationAddressPool = "loadstone.io/address-pool"
	// AnnotationLoadBalancerIPs asks for specific IPs, comma-separated, at most one per family.
	AnnotationLoadBalancerIPs = "loadstone.io/load-balancer-ips"
	// AnnotationAllowSharedIP is the sharing key: Services with the same key may share IPs.
	AnnotationAllowSharedIP = "loadstone.io/allow-shared-ip"
	// AnnotationDataplaneMode overrides the pool's spec.dataplaneMode for one Service:
	// pods, nodeport or off (see DataplaneMode). Any other value is reported in a Warning
	// Event and the Service keeps its ipMode.
	AnnotationDataplaneMode = "loadstone.io/dataplane-mode"
	// AnnotationAllocatedFromPool is written by the controller: the pool the IPs came from.
	AnnotationAllocatedFromPool = "loadstone.io/allocated-from-pool"

	// LabelExcludeFromLB is the well-known Node label that removes a node from external
	// load balancing.
	LabelExcludeFromLB = "node.kubernetes.io/exclude-from-external-load-balancers"
)
