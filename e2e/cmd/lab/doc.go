// Command lab brings the Loadstone lab up and down and walks through the Services lesson.
//
//	lab up           build the lab (removing leftovers first) and leave it running
//	lab walkthrough  lab up, then ClusterIP → NodePort → LoadBalancer with real traffic
//	lab status       what runs, what is missing
//	lab env          shell exports for using the lab (eval "$(lab env)")
//	lab down         stop everything and remove the namespaces
//
// Flags: --dir (or $LOADSTONE_LAB_DIR), --nodes, --k8s-bin, -v.
package main
