// Command lab brings the Loadstone lab up and down and walks through the Services lesson.
//
//	lab up           build the lab (removing leftovers first) and leave it running
//	lab walkthrough  lab up, then the Services lesson (package lesson): ClusterIP →
//	                 NodePort → LoadBalancer → dual-stack with real traffic and checks
//	lab status       what runs, what exited (with its log)
//	lab env          shell exports for using the lab (eval "$(lab env)")
//	lab down         stop everything and remove the namespaces
//
// Flags: --dir (or $LOADSTONE_LAB_DIR), --nodes, --k8s-bin, -v.
package main
