// Package service is the controller's Service reconciler: it gives LoadBalancer Services
// their external IPs from the pools and writes them to status.loadBalancer.ingress.
//
// It owns the ipam.Allocator (guarded by one mutex; allocation is microseconds, the API
// writes happen outside the lock, in parallel workers). Data flow:
//
//  1. Bootstrap (leader only, once): wait for the caches and the first pool configuration
//     (SetPools, called by package pools), then Restore the addresses every served Service
//     already holds in its status, oldest Service first. Until then no reconcile runs, so
//     a restart never moves or duplicates an address.
//  2. Reconcile(Service): parse the request (ipam.ParseService), Assign under the lock,
//     then write the annotation loadstone.io/allocated-from-pool and
//     status.loadBalancer.ingress in ONE merge patch to the status subresource (the API
//     server lets services/status change metadata), and emit IPAllocated /
//     AllocationFailed Events. A Service that stops being ours (deleted, type changed,
//     other class) is released.
//     Each ingress entry's ipMode follows the effective dataplane mode of its IP's pool and
//     the Service's annotations (model.DataplaneMode): Proxy for pods and nodeport (our
//     dataplane serves the IP, kube-proxy leaves it alone), VIP for off. An invalid
//     loadstone.io/dataplane-mode gets an InvalidDataplaneMode Warning and each entry
//     keeps the ipMode it has. SetPools requeues the Services of every pool whose mode
//     changed.
//  3. Services whose allocation failed are remembered as pending and enqueued again when
//     an address is released or the pools change, so exhaustion recovers without polling.
//
// Pool usage changes are signalled through Options.OnUsageChange; package pools coalesces
// them into IPAddressPool status writes.
package service
