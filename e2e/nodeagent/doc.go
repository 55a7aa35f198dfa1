// Package nodeagent is the lab's own kubelet: a small agent that makes a network namespace
// behave like a Kubernetes node, without a container runtime.
//
// One agent runs per lab node, inside that node's network namespace. It
//
//   - registers the Node (labels, podCIDRs, addresses, capacity, nodeInfo), keeps its
//     Ready condition fresh and renews its Lease in kube-node-lease;
//   - creates the bridge "cbr0" in the node namespace holding the first address of each
//     pod CIDR, with forwarding on;
//   - watches the Pods bound to the node (field selector spec.nodeName) and runs each one
//     as its own network namespace ("ls-pod-" + node tag + "-" + hash of the UID, see
//     NetnsName), joined to the bridge by a veth pair (HostVethName on the bridge, eth0 in
//     the pod), with the next free address of each pod CIDR (Pool) and default routes via
//     the bridge;
//   - serves a built-in workload on the pod's container ports, whatever the image: HTTP
//     answering "pod=NAME node=NODE client=IP:PORT" on TCP ports, an echo on UDP ports.
//     The sockets are opened inside the pod namespace by this process, from a locked OS
//     thread that enters the namespace and comes back (internal/nsthread);
//   - runs readinessProbes (httpGet, tcpSocket; gRPC as a TCP connect; exec passes) from
//     the node namespace against the pod IP and reports the Pod's status through the status
//     subresource (PodStatus computes it);
//   - honours graceful deletion: a deleted pod keeps serving until its deletionTimestamp,
//     then its workload, veth, namespace and addresses go and the Pod object is deleted
//     with grace period 0, as the kubelet does.
//
// Data flow: informer events put pod keys on a work queue; one worker syncs a pod at a time
// (start, report, or kill), computing the status with pure functions (PodStatus, Pool,
// ProbeTracker, NodeStatus) and applying it idempotently (EnsureBridge, SetupPodNet,
// StartWorkload). Allocations and pod namespaces are persisted in the state directory
// before anything is created, so a restarted agent re-adopts its pods with the same
// addresses and cleans up after pods deleted while it was away.
//
// Named namespaces are pinned under /run/netns like `ip netns add` does. Under
// `ip netns exec` the agent runs in a private mount namespace, so it pins them from a
// thread that has joined the host's mount namespace (Config.MountNS).
package nodeagent
