package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPAddressPoolSpec is the desired state of an IPAddressPool.
type IPAddressPoolSpec struct {
	// Addresses are the addresses the pool hands out. Each entry is a CIDR
	// ("203.0.113.0/24", "2001:db8:100::/64") or an inclusive range of two addresses of one
	// family ("203.0.113.10-203.0.113.20"). A pool may mix IPv4 and IPv6 entries. Entries
	// must not overlap each other or another pool's.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=90
	// +kubebuilder:validation:items:XValidation:rule=`self.contains('-') ? (self.indexOf('-') == self.lastIndexOf('-') && isIP(self.substring(0, self.indexOf('-')).trim()) && isIP(self.substring(self.indexOf('-') + 1).trim())) : isCIDR(self)`,messageExpression=`'"' + self + '" is neither a CIDR such as 203.0.113.0/24 nor a range of two addresses such as 203.0.113.10-203.0.113.20'`
	// +kubebuilder:validation:items:XValidation:rule=`self.contains('-') || !isCIDR(self) || cidr(self) == cidr(self).masked()`,messageExpression=`'"' + self + '" has address bits set after the prefix length: write the prefix with its first address, as in 203.0.113.0/24 rather than 203.0.113.5/24'`
	// +kubebuilder:validation:items:XValidation:rule=`!self.contains('-') || !(self.indexOf('-') == self.lastIndexOf('-') && isIP(self.substring(0, self.indexOf('-')).trim()) && isIP(self.substring(self.indexOf('-') + 1).trim())) || ip(self.substring(0, self.indexOf('-')).trim()).family() == ip(self.substring(self.indexOf('-') + 1).trim()).family()`,messageExpression=`'range "' + self + '" mixes IPv4 and IPv6: both ends of a range must be of one family'`
	// +kubebuilder:validation:items:XValidation:rule=`!self.contains('-') || !(self.indexOf('-') == self.lastIndexOf('-') && isIP(self.substring(0, self.indexOf('-')).trim()) && isIP(self.substring(self.indexOf('-') + 1).trim())) || ip(self.substring(0, self.indexOf('-')).trim()).family() != ip(self.substring(self.indexOf('-') + 1).trim()).family() || [['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127', '128'].filter(k, int(k) <= (ip(self.substring(0, self.indexOf('-')).trim()).family() == 4 ? 32 : 128) && cidr(self.substring(0, self.indexOf('-')).trim() + '/' + k).masked().containsIP(self.substring(self.indexOf('-') + 1).trim()))].all(m, m.size() - 1 == (ip(self.substring(0, self.indexOf('-')).trim()).family() == 4 ? 32 : 128) || cidr(self.substring(0, self.indexOf('-')).trim() + '/' + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127', '128'][m.size()]).masked().containsIP(cidr(self.substring(0, self.indexOf('-')).trim() + '/' + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127', '128'][m.size() - 1]).masked().ip()))`,messageExpression=`'range "' + self + '" is reversed: the first address must not be above the last'`
	// +listType=set
	Addresses []string `json:"addresses"`

	// AutoAssign false keeps the pool for Services that ask for it (by the
	// loadstone.io/address-pool annotation or by one of its IPs). Default true.
	// +kubebuilder:default=true
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs skips IPv4 addresses ending in .0 and .255, which some old client
	// stacks mistake for network or broadcast addresses.
	// +optional
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// ServiceAllocation restricts which Services the pool serves and orders it against other
	// pools. Unset: any Service, after pools with a priority.
	// +optional
	ServiceAllocation *ServiceAllocation `json:"serviceAllocation,omitempty"`

	// DataplaneMode says who carries the traffic to the pool's addresses on the nodes:
	// "pods": Loadstone's dataplane DNATs straight to the pod IPs, picking the pod with a
	// Maglev table that is the same on every node; "nodeport": Loadstone's dataplane
	// forwards to the NodePort of the nodes with ready endpoints (the external load
	// balancer model); "off": kube-proxy serves the address, Loadstone only announces it.
	// With pods or nodeport the controller writes ipMode Proxy in the Services' status (so
	// kube-proxy leaves the address alone), with off ipMode VIP. A Service overrides it
	// with the loadstone.io/dataplane-mode annotation. Unset: the cluster default, pods.
	// +kubebuilder:validation:Enum=pods;nodeport;off
	// +optional
	DataplaneMode DataplaneMode `json:"dataplaneMode,omitempty"`
}

// DataplaneMode is how the nodes carry the traffic to a load balancer IP: pods, nodeport
// or off.
type DataplaneMode string

// The dataplane modes.
const (
	// DataplaneModePods: Loadstone's dataplane DNATs to pod IPs, chosen by Maglev.
	DataplaneModePods DataplaneMode = "pods"
	// DataplaneModeNodePort: Loadstone's dataplane forwards to the NodePorts of nodes with
	// ready endpoints.
	DataplaneModeNodePort DataplaneMode = "nodeport"
	// DataplaneModeOff: kube-proxy serves the IP (ipMode VIP); Loadstone only announces it.
	DataplaneModeOff DataplaneMode = "off"
)

// ServiceAllocation restricts and orders an IPAddressPool for Services.
type ServiceAllocation struct {
	// Priority orders pools that could serve a Service: a lower number is tried first. 0
	// (unset) is tried after every pool with a priority.
	// +kubebuilder:validation:XValidation:rule="self >= 0",message="priority must be 0 (unset) or a positive number; lower numbers are tried first"
	// +optional
	Priority int `json:"priority,omitempty"`

	// Namespaces, if not empty, are the only namespaces whose Services may get addresses
	// from the pool.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",messageExpression="'\"' + self + '\" is not a namespace name (lowercase letters, digits and -, at most 63 characters)'"
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelectors, if not empty, select the namespaces whose Services may get
	// addresses from the pool; one matching selector is enough.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']))`,message="a matchExpressions operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && e.values.size() > 0)))`,message="a matchExpressions entry with operator In or NotIn needs at least one value"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || e.values.size() == 0))`,message="a matchExpressions entry with operator Exists or DoesNotExist takes no values"
	// +optional
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`

	// ServiceSelectors, if not empty, select the Services that may get addresses from the
	// pool by their labels; one matching selector is enough.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']))`,message="a matchExpressions operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && e.values.size() > 0)))`,message="a matchExpressions entry with operator In or NotIn needs at least one value"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || e.values.size() == 0))`,message="a matchExpressions entry with operator Exists or DoesNotExist takes no values"
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// IPAddressPoolStatus is the observed state of an IPAddressPool, written by the controller.
//
// Counts are per family. An IPv6 pool can hold more addresses than an int64 counts (a /64
// has 2^64): the available counts saturate at 9223372036854775807, which means "at least
// this many". Assigned counts are the addresses held by Services (a shared IP counts once).
type IPAddressPoolStatus struct {
	// IPv4Assigned is the number of IPv4 addresses of the pool held by Services.
	// +optional
	IPv4Assigned int64 `json:"ipv4Assigned"`
	// IPv4Available is the number of IPv4 addresses of the pool still free to assign.
	// +optional
	IPv4Available int64 `json:"ipv4Available"`
	// IPv6Assigned is the number of IPv6 addresses of the pool held by Services.
	// +optional
	IPv6Assigned int64 `json:"ipv6Assigned"`
	// IPv6Available is the number of IPv6 addresses of the pool still free to assign,
	// saturating at 9223372036854775807.
	// +optional
	IPv6Available int64 `json:"ipv6Available"`

	// Conditions: Valid (see ConditionValid).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IPAddressPool is a set of addresses that Loadstone assigns to LoadBalancer Services.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=pool;pools,categories=loadstone
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`
// +kubebuilder:printcolumn:name="Auto Assign",type=boolean,JSONPath=`.spec.autoAssign`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="IPv4 Assigned",type=integer,JSONPath=`.status.ipv4Assigned`
// +kubebuilder:printcolumn:name="IPv4 Available",type=integer,JSONPath=`.status.ipv4Available`
// +kubebuilder:printcolumn:name="IPv6 Assigned",type=integer,JSONPath=`.status.ipv6Assigned`
// +kubebuilder:printcolumn:name="IPv6 Available",type=integer,JSONPath=`.status.ipv6Available`
// +kubebuilder:printcolumn:name="Priority",type=integer,JSONPath=`.spec.serviceAllocation.priority`,priority=1
// +kubebuilder:printcolumn:name="Dataplane",type=string,JSONPath=`.spec.dataplaneMode`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPAddressPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPAddressPoolSpec `json:"spec"`
	// +optional
	Status IPAddressPoolStatus `json:"status,omitempty"`
}

// IPAddressPoolList is a list of IPAddressPools.
// +kubebuilder:object:root=true
type IPAddressPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAddressPool `json:"items"`
}
