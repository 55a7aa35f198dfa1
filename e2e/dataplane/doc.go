// Package dataplane holds the end-to-end scenarios of the node dataplane (issue 10) in
// the lab: Services annotated loadstone.io/dataplane-mode=pods are served by the
// speaker's nftables table `inet loadstone` on every node instead of kube-proxy (the
// controller writes ipMode Proxy, so kube-proxy's table has no entry for the LB IP),
// externalTrafficPolicy Local keeps the client address, a frontend without endpoints
// answers with a TCP RST, loadBalancerSourceRanges drop and count foreign sources, mode
// nodeport forwards to a NodePort, IPv6 works, and the table goes away when no Service
// uses the dataplane. Run it under the lab lock:
//
//	flock /tmp/loadstone-lab.lock go test -p 1 ./e2e/dataplane/
//
// Traffic comes from the client namespace through the router to the node that answers
// ARP for the LB IP.
package dataplane
