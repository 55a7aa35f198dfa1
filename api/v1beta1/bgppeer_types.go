package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPPeerSpec is the desired state of a BGPPeer: one BGP session from each selected node.
// +kubebuilder:validation:XValidation:rule="!has(self.password) || !has(self.passwordSecret)",message="set password or passwordSecret, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.sourceAddress) || !isIP(self.sourceAddress) || !isIP(self.peerAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()",message="sourceAddress and peerAddress must be of the same family (both IPv4 or both IPv6)"
// +kubebuilder:validation:XValidation:rule="!has(self.ebgpMultiHop) || !self.ebgpMultiHop || self.myASN != self.peerASN",message="ebgpMultiHop applies to eBGP only; this peer is iBGP (myASN equals peerASN)"
// +kubebuilder:validation:XValidation:rule="!has(self.strictBFD) || !self.strictBFD || (has(self.bfdProfile) && self.bfdProfile.size() > 0)",message="strictBFD needs bfdProfile: without a BFD session there is nothing to wait for"
// +kubebuilder:validation:XValidation:rule=`!has(self.keepaliveTime) || !self.keepaliveTime.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$') || (has(self.holdTime) && !self.holdTime.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$')) || ((has(self.holdTime) ? duration(self.holdTime) : duration('90s')) == duration('0s') ? duration(self.keepaliveTime) == duration('0s') : (duration(self.keepaliveTime) > duration('0s') && duration(self.keepaliveTime) < (has(self.holdTime) ? duration(self.holdTime) : duration('90s'))))`,message="keepaliveTime must be above 0s and below holdTime (90s when unset), or 0s when holdTime is 0s"
type BGPPeerSpec struct {
	// MyASN is the local AS number the nodes speak as, 1 to 4294967295.
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 4294967295",message="myASN must be an AS number from 1 to 4294967295"
	MyASN int64 `json:"myASN"`

	// PeerASN is the AS number of the peer, 1 to 4294967295. Equal to myASN means iBGP.
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 4294967295",message="peerASN must be an AS number from 1 to 4294967295"
	PeerASN int64 `json:"peerASN"`

	// PeerAddress is the IPv4 or IPv6 address of the peer.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",messageExpression="'peerAddress \"' + self + '\" is not an IP address'"
	PeerAddress string `json:"peerAddress"`

	// PeerPort is the peer's TCP port. Default 179.
	// +kubebuilder:default=179
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 65535",message="peerPort must be a TCP port from 1 to 65535"
	// +optional
	PeerPort *int32 `json:"peerPort,omitempty"`

	// SourceAddress is the local address of the session; it must be on the node. Unset: the
	// kernel chooses.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",messageExpression="'sourceAddress \"' + self + '\" is not an IP address'"
	// +optional
	SourceAddress string `json:"sourceAddress,omitempty"`

	// HoldTime is the BGP hold time offered to the peer: 0s (no keepalives) or 3s to
	// 65535s, whole seconds. Unset: 90s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule=`self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$')`,message="holdTime must be a duration such as 90s or 1m30s"
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$') || duration(self) == duration('0s') || (duration(self) >= duration('3s') && duration(self) <= duration('65535s'))`,message="holdTime must be 0s or between 3s and 65535s"
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$') || duration(self).getMilliseconds() % 1000 == 0`,message="holdTime must be a whole number of seconds"
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime is the interval between keepalives: above 0s and below holdTime, whole
	// seconds (0s when holdTime is 0s). Unset: a third of the hold time.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule=`self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$')`,message="keepaliveTime must be a duration such as 30s"
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$') || duration(self).getMilliseconds() % 1000 == 0`,message="keepaliveTime must be a whole number of seconds"
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectTime is the time between attempts to open the session, 1s to 65535s, whole
	// seconds. Unset: 10s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule=`self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$')`,message="connectTime must be a duration such as 10s"
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$') || (duration(self) >= duration('1s') && duration(self) <= duration('65535s') && duration(self).getMilliseconds() % 1000 == 0)`,message="connectTime must be a whole number of seconds from 1s to 65535s"
	// +optional
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// EBGPMultiHop lets an eBGP session run to a peer that is not directly connected.
	// +optional
	EBGPMultiHop bool `json:"ebgpMultiHop,omitempty"`

	// Password is the TCP MD5 password of the session, in clear text. Prefer passwordSecret.
	// +kubebuilder:validation:MaxLength=80
	// +optional
	Password string `json:"password,omitempty"`

	// PasswordSecret takes the TCP MD5 password from a Secret. The Secret must be in the
	// namespace Loadstone is installed in: the speakers may read Secrets there only. Until
	// it can be read, the node's BGPSessionStatus has Configured=False.
	// +optional
	PasswordSecret *SecretKeyReference `json:"passwordSecret,omitempty"`

	// BFDProfile names a BFDProfile: when set, a BFD session to the peer gives sub-second
	// failure detection.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`

	// StrictBFD advertises to the peer only while the BFD session to it is Up: the routes
	// are withdrawn as soon as BFD goes down (and are sent only once it first comes up),
	// even while the BGP session itself stays Established. Needs bfdProfile. Default
	// false: BFD only speeds up the detection of a dead session.
	// +optional
	StrictBFD bool `json:"strictBFD,omitempty"`

	// GracefulRestart enables BGP graceful restart (RFC 4724): the peer keeps the routes of
	// a restarting speaker for the restart time.
	// +optional
	GracefulRestart bool `json:"gracefulRestart,omitempty"`

	// NodeSelectors, if not empty, restrict the nodes that open the session; one matching
	// selector is enough. Empty: every node.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']))`,message="a matchExpressions operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && e.values.size() > 0)))`,message="a matchExpressions entry with operator In or NotIn needs at least one value"
	// +kubebuilder:validation:XValidation:rule=`self.all(s, !has(s.matchExpressions) || s.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || e.values.size() == 0))`,message="a matchExpressions entry with operator Exists or DoesNotExist takes no values"
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// RouterID is the BGP identifier the nodes use for this session, an IPv4 address. Unset:
	// the node chooses (its IPv4 address).
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",messageExpression="'routerID \"' + self + '\" is not an IPv4 address; a BGP identifier is 32 bits, written as IPv4'"
	// +optional
	RouterID string `json:"routerID,omitempty"`
}

// SecretKeyReference names one key of a Secret.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the Secret: the namespace Loadstone is installed in (see PasswordSecret).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// Key in the Secret's data. Default "password".
	// +kubebuilder:default=password
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// BGPPeerStatus is the observed state of a BGPPeer, written by the controller.
type BGPPeerStatus struct {
	// Conditions: Valid (see ConditionValid). The state of each node's session is in the
	// BGPSessionStatus objects (one per node and peer).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BGPPeer is a BGP router that the selected nodes peer with: each selected node's speaker
// opens a session to it and advertises the addresses its BGPAdvertisements select. The
// controller checks BGPPeers (condition Valid); each node reports its session in a
// BGPSessionStatus.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=peer,categories=loadstone
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="Port",type=integer,JSONPath=`.spec.peerPort`
// +kubebuilder:printcolumn:name="Peer ASN",type=integer,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="My ASN",type=integer,JSONPath=`.spec.myASN`
// +kubebuilder:printcolumn:name="BFD Profile",type=string,JSONPath=`.spec.bfdProfile`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Hold Time",type=string,JSONPath=`.spec.holdTime`,priority=1
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPPeerSpec `json:"spec"`
	// +optional
	Status BGPPeerStatus `json:"status,omitempty"`
}

// BGPPeerList is a list of BGPPeers.
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}
