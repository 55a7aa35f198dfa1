// Command nodeagent runs the lab's node agent (package e2e/nodeagent) for one node. The lab
// starts it inside the node's network namespace:
//
//	ip netns exec ls-node1 nodeagent --kubeconfig K --node-name ls-node1 \
//	  --node-ip 192.0.2.11 --node-ip6 2001:db8:1::11 \
//	  --pod-cidr 198.18.1.0/24 --pod-cidr6 2001:db8:1000:1::/64 --state-dir DIR
//
// See docs/nodeagent.md for every flag.
package main
