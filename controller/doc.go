// Command controller is Loadstone's controller: it assigns addresses from IPAddressPools
// to LoadBalancer Services. main only parses flags and wires packages together; see
// controller/app.
package main
