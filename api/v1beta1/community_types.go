package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CommunitySpec is the desired state of a Community: a list of aliases.
type CommunitySpec struct {
	// Communities are the aliases. A name must be unique across all Community objects.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	// +listType=map
	// +listMapKey=name
	Communities []CommunityAlias `json:"communities"`
}

// CommunityAlias gives a BGP community a name that BGPAdvertisements use.
type CommunityAlias struct {
	// Name of the alias: lowercase letters, digits and -, at most 63 characters.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",messageExpression="'alias name \"' + self + '\" must be lowercase letters, digits and - (starting and ending with a letter or digit)'"
	Name string `json:"name"`

	// Value is a standard community "AA:NN" (each part 0 to 65535) or a large community
	// "A:B:C" (each part 0 to 4294967295; "large:A:B:C" is accepted too).
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule=`(self.matches('^[0-9]{1,5}:[0-9]{1,5}$') && self.split(':').all(p, int(p) <= 65535)) || (self.matches('^(large:)?[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && self.split(':').filter(p, p != 'large').all(p, int(p) <= 4294967295))`,messageExpression="'\"' + self + '\" is not a community value: use AA:NN (each part 0-65535) or a large community A:B:C (each part 0-4294967295)'"
	Value string `json:"value"`
}

// CommunityStatus is the observed state of a Community, written by the controller.
type CommunityStatus struct {
	// Conditions: Valid (see ConditionValid).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Community defines named aliases for BGP communities, for BGPAdvertisements. The
// controller checks Communities (condition Valid).
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=loadstone
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Aliases",type=string,JSONPath=`.spec.communities[*].name`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Community struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec CommunitySpec `json:"spec"`
	// +optional
	Status CommunityStatus `json:"status,omitempty"`
}

// CommunityList is a list of Communities.
// +kubebuilder:object:root=true
type CommunityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Community `json:"items"`
}
