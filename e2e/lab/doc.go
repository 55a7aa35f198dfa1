// Package lab builds and tears down the Loadstone lab: a real Kubernetes cluster in network
// namespaces on one Linux machine, with no container runtime and no images.
//
// Topology (every namespace and root-namespace link the lab creates starts with "ls-", so
// leftovers of a killed run are found by name):
//
//	ls-client (198.51.100.10) ── ls-router (FRR: zebra, bgpd, bfdd; bridge br0 192.0.2.1)
//	                                   │ br0 (node LAN 192.0.2.0/24, 2001:db8:1::/64)
//	       ┌───────────────┬───────────┼───────────┐
//	    ls-cp (.2)     ls-node1 (.11) ls-node2 (.12) …
//	    etcd, apiserver,  node agent, kube-proxy (nftables), Loadstone speaker
//	    controller-manager, scheduler, Loadstone controller
//
// The root namespace has no link into the lab (the machine's own network may use the same
// documentation range): it reaches the API server through a relay on HostAPIAddr, and Go
// code reaches anything in the lab with Dialer or internal/nsthread.DoNamed, which create
// sockets inside a lab namespace.
//
// Data flow of Up: remove leftovers (recorded PIDs whose /proc cmdline and start time still
// match, then processes inside "ls-" namespaces, then the namespaces) → generate a CA and one
// client certificate and kubeconfig per component → build the network → start FRR → start
// the control plane and wait for the API server → apply RBAC, CRDs and the sample pool →
// start one node agent, kube-proxy and speaker per node → wait for the Nodes to be Ready.
// Every process and namespace is recorded in Dir/state.json as soon as it exists, so Down
// (or the next Up) can remove it even after a crash.
//
// The lab is a test bed, not a product component: it logs through an injected slog.Logger
// and keeps no global state, but exports no metrics.
package lab
