// Package nodeagent is the lab's own kubelet: a small agent that makes a network namespace
// behave like a Kubernetes node, with a small container runtime of its own and no images.
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
//   - runs each container as the image catalog says (ImageCatalog.Resolve): Loadstone's
//     image runs the locally built speaker or controller, CoreDNS's a CoreDNS binary, shell
//     and curl images the host's programs — with container-runtime semantics: env, volumes,
//     the service-account token, resolv.conf, uid/gid, the runtime's capability rules,
//     restarts with backoff (CrashLoopBackOff), per-instance logs, SIGTERM then SIGKILL.
//     A program starts through a re-exec of this binary (RunHelperIfRequested) that joins
//     the pod's network namespace, makes a private mount namespace and drops privileges on
//     one thread before execve;
//   - serves a built-in workload for every other image on its container ports: HTTP
//     answering "pod=NAME node=NODE client=IP:PORT" on TCP ports, an echo on UDP ports.
//     The sockets are opened inside the pod namespace by this process, from a locked OS
//     thread that enters the namespace and comes back (internal/nsthread);
//   - runs probes (httpGet, tcpSocket; gRPC as a TCP connect) from the node namespace
//     against the pod IP, exec probes in the container, liveness and startup probes for
//     programs, and reports the Pod's status through the status subresource (PodStatus
//     computes it);
//   - implements Runtime (logs, exec, the pod's netns) for the kubelet API;
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
