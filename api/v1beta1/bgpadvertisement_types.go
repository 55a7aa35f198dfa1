package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPAdvertisementSpec is the desired state of a BGPAdvertisement.
type BGPAdvertisementSpec struct {
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

	// AggregationLength is the IPv4 prefix length announced for each address: 32 announces
	// the address itself; shorter lengths announce the covering prefix, once. Default 32.
	// +kubebuilder:default=32
	// +kubebuilder:validation:XValidation:rule="self >= 0 && self <= 32",message="aggregationLength must be an IPv4 prefix length from 0 to 32"
	// +optional
	AggregationLength *int32 `json:"aggregationLength,omitempty"`

	// AggregationLengthV6 is the IPv6 prefix length announced for each address. Default 128.
	// +kubebuilder:default=128
	// +kubebuilder:validation:XValidation:rule="self >= 0 && self <= 128",message="aggregationLengthV6 must be an IPv6 prefix length from 0 to 128"
	// +optional
	AggregationLengthV6 *int32 `json:"aggregationLengthV6,omitempty"`

	// LocalPref is the BGP LOCAL_PREF attribute of the announcements, for iBGP peers, 0 to
	// 4294967295. Unset: not sent.
	// +kubebuilder:validation:XValidation:rule="self >= 0 && self <= 4294967295",message="localPref must be from 0 to 4294967295"
	// +optional
	LocalPref *int64 `json:"localPref,omitempty"`

	// Communities are attached to the announcements. Each is a standard community "AA:NN"
	// (each part 0 to 65535), a large community "A:B:C" (each part 0 to 4294967295; MetalLB's
	// "large:A:B:C" is accepted too), or the name of an alias defined by a Community object.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule=`self.contains(':') ? ((self.matches('^[0-9]{1,5}:[0-9]{1,5}$') && self.split(':').all(p, int(p) <= 65535)) || (self.matches('^(large:)?[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && self.split(':').filter(p, p != 'large').all(p, int(p) <= 4294967295))) : self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,messageExpression="'\"' + self + '\" is not a community: use AA:NN (each part 0-65535), a large community A:B:C (each part 0-4294967295), or the name of a Community alias (lowercase letters, digits and -)'"
	// +listType=set
	// +optional
	Communities []string `json:"communities,omitempty"`

	// Peers names the BGPPeers that receive the announcements. Empty: every peer.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	Peers []string `json:"peers,omitempty"`
}

// BGPAdvertisementStatus is the observed state of a BGPAdvertisement, written by the controller.
type BGPAdvertisementStatus struct {
	// Conditions: Valid (see ConditionValid).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BGPAdvertisement announces pool addresses to BGP peers: every selected node advertises
// the IPs (or their aggregates) of the Services it serves from the selected pools to the
// selected peers, with these attributes. The controller checks BGPAdvertisements
// (condition Valid); what each node advertises to each peer is in its BGPSessionStatus.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bgpadv,categories=loadstone
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.spec.peers`
// +kubebuilder:printcolumn:name="Aggregation",type=integer,JSONPath=`.spec.aggregationLength`
// +kubebuilder:printcolumn:name="Aggregation V6",type=integer,JSONPath=`.spec.aggregationLengthV6`
// +kubebuilder:printcolumn:name="Communities",type=string,JSONPath=`.spec.communities`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Local Pref",type=integer,JSONPath=`.spec.localPref`,priority=1
// +kubebuilder:printcolumn:name="Pool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec BGPAdvertisementSpec `json:"spec,omitempty"`
	// +optional
	Status BGPAdvertisementStatus `json:"status,omitempty"`
}

// BGPAdvertisementList is a list of BGPAdvertisements.
// +kubebuilder:object:root=true
type BGPAdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPAdvertisement `json:"items"`
}
