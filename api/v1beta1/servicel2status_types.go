package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Labels on ServiceL2Status objects, so that a speaker lists its own and kubectl can filter.
const (
	// LabelStatusNode is the name of the node that announces.
	LabelStatusNode = "loadstone.io/node"
	// LabelStatusService is the name of the Service (in the object's namespace).
	LabelStatusService = "loadstone.io/service"
)

// ServiceL2StatusStatus says which node answers ARP/NDP for a Service's IPs, and where.
type ServiceL2StatusStatus struct {
	// Node is the node that answers for IPs.
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`
	// ServiceName is the Service, in the same namespace.
	// +kubebuilder:validation:MaxLength=63
	ServiceName string `json:"serviceName,omitempty"`
	// Interfaces are the node's interfaces the IPs are answered on.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=15
	// +listType=set
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`
	// IPs are the Service's LB IPs this node answers for.
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:MaxLength=45
	// +listType=set
	// +optional
	IPs []string `json:"ips,omitempty"`
	// MissingInterfaces are the interfaces that the L2Advertisements selecting this node
	// for the Service's IPs name but that this node does not have. The IPs are still
	// announced on the node's other interfaces when some are left (see Interfaces and the
	// Announced condition).
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	MissingInterfaces []MissingInterface `json:"missingInterfaces,omitempty"`
	// Conditions: Announced (see ConditionAnnounced).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MissingInterface is an interface named by an L2Advertisement that a node does not have.
type MissingInterface struct {
	// L2Advertisement is the advertisement that names the interface.
	// +kubebuilder:validation:MaxLength=253
	L2Advertisement string `json:"l2Advertisement"`
	// Interface is the interface name.
	// +kubebuilder:validation:MaxLength=15
	Interface string `json:"interface"`
}

// ConditionAnnounced is True on a ServiceL2Status when the node answers for all the IPs it
// was elected for; False (reason InterfaceMissing or AnnounceFailed) when some could not be
// served on this node, with the details in the message.
const ConditionAnnounced = "Announced"

// Reasons of the Announced condition.
const (
	ReasonAnnounced        = "Announced"
	ReasonInterfaceMissing = "InterfaceMissing"
	ReasonAnnounceFailed   = "AnnounceFailed"
)

// ServiceL2Status records that one node announces (some of) a Service's LB IPs in
// layer-2 mode. The speaker of that node creates, updates and deletes it; there is one per
// (Service, announcing node) — a dual-stack Service whose two IPs are elected to different
// nodes has two. Its owner is the Service, so it goes away with it.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=l2status,categories=loadstone
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=`.status.interfaces`
// +kubebuilder:printcolumn:name="IPs",type=string,JSONPath=`.status.ips`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ServiceL2Status struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Status ServiceL2StatusStatus `json:"status,omitempty"`
}

// ServiceL2StatusList is a list of ServiceL2Status.
// +kubebuilder:object:root=true
type ServiceL2StatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceL2Status `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &ServiceL2Status{}, &ServiceL2StatusList{})
		return nil
	})
}
