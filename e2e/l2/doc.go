// Package l2 holds the end-to-end scenarios of layer-2 announcement (issue: speaker
// membership, election, ARP/NDP) and benchmark B1, run in the lab:
//
//	go test -p 1 ./e2e/l2/...                      # scenarios
//	LOADSTONE_BENCH=1 go test -p 1 -run B1 -v ./e2e/l2/   # B1, >= 20 runs per case
//
// Traffic comes from the client namespace through the router, whose neighbour table
// shows which node's MAC an LB IP resolves to.
package l2
