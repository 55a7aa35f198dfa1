package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// L2AdvertisementSpec is the desired state of an L2Advertisement.
type L2AdvertisementSpec struct {
	// IPAddressPools names the pools this advertisement covers.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	IPAddressPools []string `json:"ipAddressPools,omitempty"`

	// IPAddressPoolSelectors select more pools by their labels. When both ipAddressPools and
	// ipAddressPoolSelectors are empty, the advertisement covers every pool.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']))`,message="a matchExpressions operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && e.values.size() > 0)))`,message="a matchExpressions entry with operator In or NotIn needs at least one value"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || e.values.size() == 0))`,message="a matchExpressions entry with operator Exists or DoesNotExist takes no values"
	// +optional
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`

	// NodeSelectors, if not empty, restrict the nodes that announce; one matching selector
	// is enough. Empty: every node.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']))`,message="a matchExpressions operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && e.values.size() > 0)))`,message="a matchExpressions entry with operator In or NotIn needs at least one value"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || e.values.size() == 0))`,message="a matchExpressions entry with operator Exists or DoesNotExist takes no values"
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// Interfaces, if not empty, are the only interfaces on which the elected node answers
	// ARP and NDP for the covered addresses. Empty: every interface.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[A-Za-z0-9][-A-Za-z0-9_.]*$')",messageExpression="'\"' + self + '\" is not an interface name (letters, digits, -, _ and ., at most 15 characters)'"
	// +listType=set
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`
}

// L2AdvertisementStatus is the observed state of a L2Advertisement, written by the controller.
type L2AdvertisementStatus struct {
	// Conditions: Valid (see ConditionValid), and InterfacesFound (see
	// ConditionInterfacesFound) when the advertisement names interfaces.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// L2Advertisement announces pool addresses on the local network segment: one elected node
// per address answers ARP (IPv4) and NDP (IPv6) for it.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=l2adv,categories=loadstone
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=`.spec.interfaces`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Pool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`,priority=1
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type L2Advertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec L2AdvertisementSpec `json:"spec,omitempty"`
	// +optional
	Status L2AdvertisementStatus `json:"status,omitempty"`
}

// L2AdvertisementList is a list of L2Advertisements.
// +kubebuilder:object:root=true
type L2AdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []L2Advertisement `json:"items"`
}

// ConditionInterfacesFound is set by the controller on an L2Advertisement that names
// interfaces. It is False (reason InterfaceMissing) when a named interface is missing on
// every node that reported about it in a ServiceL2Status (status.missingInterfaces, or
// status.interfaces when the node answers on it) and present on none; True (reason
// InterfacesFound) otherwise. Nodes report only for the IPs they are elected for, so
// True means "no node elected for this advertisement's addresses lacks an interface on
// every such node", not that every node has every interface.
const ConditionInterfacesFound = "InterfacesFound"

// ReasonInterfacesFound is the reason of a True InterfacesFound condition (a False one
// has reason ReasonInterfaceMissing).
const ReasonInterfacesFound = "InterfacesFound"
