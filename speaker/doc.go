// Command speaker is Loadstone's per-node agent. In layer-2 mode it joins the speakers'
// memberlist, elects one node per LB IP, and answers ARP/NDP for the IPs this node won.
// main only parses flags and wires packages together; see speaker/agent and docs/speaker.md.
package main
