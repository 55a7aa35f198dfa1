package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BFDProfileSpec is the desired state of a BFDProfile. Intervals are in milliseconds.
type BFDProfileSpec struct {
	// ReceiveInterval is the lowest interval, in milliseconds, at which this end can receive
	// BFD control packets, 10 to 60000. Default 300.
	// +kubebuilder:default=300
	// +kubebuilder:validation:XValidation:rule="self >= 10 && self <= 60000",message="receiveInterval must be from 10 to 60000 milliseconds"
	// +optional
	ReceiveInterval *int32 `json:"receiveInterval,omitempty"`

	// TransmitInterval is the lowest interval, in milliseconds, at which this end wants to
	// send BFD control packets, 10 to 60000. Default 300.
	// +kubebuilder:default=300
	// +kubebuilder:validation:XValidation:rule="self >= 10 && self <= 60000",message="transmitInterval must be from 10 to 60000 milliseconds"
	// +optional
	TransmitInterval *int32 `json:"transmitInterval,omitempty"`

	// DetectMultiplier is the number of missed packets after which the session is down,
	// 2 to 255. Default 3.
	// +kubebuilder:default=3
	// +kubebuilder:validation:XValidation:rule="self >= 2 && self <= 255",message="detectMultiplier must be from 2 to 255"
	// +optional
	DetectMultiplier *int32 `json:"detectMultiplier,omitempty"`

	// PassiveMode makes this end wait for the peer's first control packet instead of
	// starting the session.
	// +optional
	PassiveMode bool `json:"passiveMode,omitempty"`

	// MinimumTTL is the lowest TTL accepted on incoming packets, 1 to 254; single-hop BFD
	// sends with TTL 255, so 254 allows one hop. Default 254.
	// +kubebuilder:default=254
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 254",message="minimumTtl must be from 1 to 254"
	// +optional
	MinimumTTL *int32 `json:"minimumTtl,omitempty"`
}

// BFDProfile is a set of BFD session parameters that BGPPeers refer to by name: each node
// runs a BFD session (RFC 5880/5881, asynchronous, single hop) with these parameters to
// every peer whose BGPPeer names the profile. The controller checks that the BGPPeers'
// references resolve; each session's BFD state is in its BGPSessionStatus.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bfd,categories=loadstone
// +kubebuilder:printcolumn:name="Receive (ms)",type=integer,JSONPath=`.spec.receiveInterval`
// +kubebuilder:printcolumn:name="Transmit (ms)",type=integer,JSONPath=`.spec.transmitInterval`
// +kubebuilder:printcolumn:name="Multiplier",type=integer,JSONPath=`.spec.detectMultiplier`
// +kubebuilder:printcolumn:name="Passive",type=boolean,JSONPath=`.spec.passiveMode`
// +kubebuilder:printcolumn:name="Minimum TTL",type=integer,JSONPath=`.spec.minimumTtl`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BFDProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec BFDProfileSpec `json:"spec,omitempty"`
}

// BFDProfileList is a list of BFDProfiles.
// +kubebuilder:object:root=true
type BFDProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BFDProfile `json:"items"`
}
