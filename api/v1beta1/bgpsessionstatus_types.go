package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// LabelStatusPeer is the label, on BGPSessionStatus objects, naming the BGPPeer (next to
// LabelStatusNode, the node). Label values hold at most 63 characters: a longer name is
// shortened with a hash suffix (see the speaker's report package); status.peer and
// status.node always carry the full names.
const LabelStatusPeer = "loadstone.io/peer"

// BGPSessionState is the state of a BGP session's finite state machine (RFC 4271 §8.2.2).
// +kubebuilder:validation:Enum=Idle;Connect;Active;OpenSent;OpenConfirm;Established
type BGPSessionState string

// The BGP session states.
const (
	BGPStateIdle        BGPSessionState = "Idle"
	BGPStateConnect     BGPSessionState = "Connect"
	BGPStateActive      BGPSessionState = "Active"
	BGPStateOpenSent    BGPSessionState = "OpenSent"
	BGPStateOpenConfirm BGPSessionState = "OpenConfirm"
	BGPStateEstablished BGPSessionState = "Established"
)

// BFDSessionState is the state of a BFD session (RFC 5880 §4.1).
// +kubebuilder:validation:Enum=AdminDown;Down;Init;Up
type BFDSessionState string

// The BFD session states.
const (
	BFDStateAdminDown BFDSessionState = "AdminDown"
	BFDStateDown      BFDSessionState = "Down"
	BFDStateInit      BFDSessionState = "Init"
	BFDStateUp        BFDSessionState = "Up"
)

// MaxAdvertisedPaths is the most paths a BGPSessionStatus lists in status.advertised; the
// speaker lists the first ones in prefix order and status.advertisedCount stays exact.
const MaxAdvertisedPaths = 1024

// BGPSessionStatusStatus is the observed state of one BGP session (and its BFD session)
// from one node to one BGPPeer.
type BGPSessionStatusStatus struct {
	// Node is the node that runs the session.
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`
	// Peer is the BGPPeer's name.
	// +kubebuilder:validation:MaxLength=253
	Peer string `json:"peer,omitempty"`
	// PeerAddress is the peer's IP address.
	// +kubebuilder:validation:MaxLength=45
	// +optional
	PeerAddress string `json:"peerAddress,omitempty"`

	// SessionState is the BGP state: Idle, Connect, Active, OpenSent, OpenConfirm or
	// Established. Only Established exchanges routes.
	// +optional
	SessionState BGPSessionState `json:"sessionState,omitempty"`
	// EstablishedSince is when the session last became Established; unset while it is not.
	// +optional
	EstablishedSince *metav1.Time `json:"establishedSince,omitempty"`
	// NegotiatedHoldTime is the hold time agreed with the peer (the lower of both offers;
	// 0s means no keepalives), while Established.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +optional
	NegotiatedHoldTime *metav1.Duration `json:"negotiatedHoldTime,omitempty"`
	// NegotiatedKeepaliveTime is the keepalive interval in use, while Established.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +optional
	NegotiatedKeepaliveTime *metav1.Duration `json:"negotiatedKeepaliveTime,omitempty"`
	// LastError is the last error of the session (a NOTIFICATION sent or received, a
	// connection failure), at most 1024 characters; empty when there was none.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LastError string `json:"lastError,omitempty"`

	// BFDState is the state of the BFD session to the peer: AdminDown, Down, Init or Up;
	// empty when the BGPPeer has no BFD profile.
	// +optional
	BFDState BFDSessionState `json:"bfdState,omitempty"`
	// BFDProfile is the BFDProfile the BFD session runs with; empty without BFD.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`
	// BFDLastDownDiagnostic is the diagnostic of the BFD session's last transition from Up
	// to Down (RFC 5880 §4.1), such as ControlDetectionTimeExpired or NeighborSignaledDown.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	BFDLastDownDiagnostic string `json:"bfdLastDownDiagnostic,omitempty"`
	// BFDLastDownTime is when the BFD session last went from Up to Down.
	// +optional
	BFDLastDownTime *metav1.Time `json:"bfdLastDownTime,omitempty"`

	// AdvertisedCount is the number of paths advertised to the peer, exact even when
	// advertised lists only the first 1024.
	// +kubebuilder:validation:Minimum=0
	// +optional
	AdvertisedCount int32 `json:"advertisedCount,omitempty"`
	// Advertised are the paths advertised to the peer, in prefix order, at most 1024 (see
	// advertisedCount).
	// +kubebuilder:validation:MaxItems=1024
	// +listType=atomic
	// +optional
	Advertised []AdvertisedPath `json:"advertised,omitempty"`

	// Conditions: Configured (see ConditionConfigured).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AdvertisedPath is one prefix advertised to a peer, with its attributes.
type AdvertisedPath struct {
	// Prefix is the advertised prefix, such as 203.0.113.10/32.
	// +kubebuilder:validation:MaxLength=49
	Prefix string `json:"prefix"`
	// NextHop is the next hop sent with the prefix (this node's session address).
	// +kubebuilder:validation:MaxLength=45
	// +optional
	NextHop string `json:"nextHop,omitempty"`
	// Communities are the standard communities sent, as AA:NN.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=11
	// +listType=atomic
	// +optional
	Communities []string `json:"communities,omitempty"`
	// LargeCommunities are the large communities sent, as A:B:C.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=32
	// +listType=atomic
	// +optional
	LargeCommunities []string `json:"largeCommunities,omitempty"`
	// LocalPref is the LOCAL_PREF sent (iBGP only); unset when none is sent.
	// +optional
	LocalPref *int64 `json:"localPref,omitempty"`
	// LinkBandwidth is the value of the link-bandwidth extended community sent, in bytes
	// per second (rounded); unset when none is sent.
	// +kubebuilder:validation:Minimum=0
	// +optional
	LinkBandwidth *int64 `json:"linkBandwidth,omitempty"`
}

// ConditionConfigured is True on a BGPSessionStatus when the node could set the session up
// as its BGPPeer says; False (reason ConfigurationProblem) when something kept part of it
// from taking effect on this node — a missing password Secret or key, a missing BFD
// profile, no usable router ID — with the details in the message.
const ConditionConfigured = "Configured"

// Reasons of the Configured condition.
const (
	ReasonConfigured           = "Configured"
	ReasonConfigurationProblem = "ConfigurationProblem"
)

// BGPSessionStatus reports one node's BGP session to one BGPPeer, and its BFD session:
// state, negotiated timers, last error and the paths advertised. The speaker of that node
// creates, updates and deletes it; there is one per (node, BGPPeer that selects the node).
// Its owner is the Node, so it goes away with the node.
//
// Its name is "<node>.<peer>" when the node's name has no dot and the whole fits in 253
// characters; otherwise the start of "<node>.<peer>" followed by "-" and a hash of both
// names. Select by labels loadstone.io/node and loadstone.io/peer instead of by name.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bgpsession,categories=loadstone
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Peer",type=string,JSONPath=`.status.peer`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.status.peerAddress`
// +kubebuilder:printcolumn:name="Session",type=string,JSONPath=`.status.sessionState`
// +kubebuilder:printcolumn:name="BFD",type=string,JSONPath=`.status.bfdState`
// +kubebuilder:printcolumn:name="Prefixes",type=integer,JSONPath=`.status.advertisedCount`
// +kubebuilder:printcolumn:name="Since",type=date,JSONPath=`.status.establishedSince`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPSessionStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Status BGPSessionStatusStatus `json:"status,omitempty"`
}

// BGPSessionStatusList is a list of BGPSessionStatus.
// +kubebuilder:object:root=true
type BGPSessionStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPSessionStatus `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &BGPSessionStatus{}, &BGPSessionStatusList{})
		return nil
	})
}
