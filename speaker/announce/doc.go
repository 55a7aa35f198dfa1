// Package announce computes, as a pure function of a snapshot (configuration model,
// Services, Nodes, live members, this node's interfaces), which LB IPs this node announces
// in layer-2 mode and on which interfaces, plus the election result of every IP (for
// status and Events) and the problems found (for conditions and Events).
//
// Steps for each LB IP found in a Service's status.loadBalancer.ingress:
//  1. its pool: the Service's allocated-from-pool annotation when that pool contains the
//     IP, else the pool whose ranges contain it; no pool → not announced (IPNotInPool);
//  2. the L2Advertisements covering the pool; none → not an L2 IP (BGP only), skipped;
//  3. the election (package election) among all Nodes, a node being Selected when one of
//     those advertisements' nodeSelectors matches it (or it has none), and Alive when it
//     is a live member — or, in degraded mode, when its Node is Ready;
//  4. if this node wins: the interfaces are the union of the interfaces named by the
//     advertisements that select this node; if any of them names none, the IP is announced
//     on the interface holding the route to it (an empty list for package layer2). Named
//     interfaces missing on this node are dropped with an InterfaceMissing problem (also
//     when another advertisement names none, so a misspelled name never goes unseen); if
//     none is left the IP is not announced here (a NoUsableInterface problem says so).
//
// Independently of the elections, Plan.Missing lists every interface that an
// advertisement selecting this node names and this node lacks, so each speaker can report
// its own missing interfaces even when it announces nothing.
//
// Services sharing an IP are elected together (see election), so they share the node.
package announce
