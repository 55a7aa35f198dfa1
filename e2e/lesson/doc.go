// Package lesson is the lab's Services lesson: a Deployment behind a ClusterIP Service,
// scaling, NodePort, LoadBalancer with an IP from Loadstone's pool, then dual-stack — with
// real traffic from a pod and from the client behind the router.
//
// There is one copy of it. `lab walkthrough` (`make lab`) runs it for a person to read;
// TestServicesLesson in e2e/labtest runs the same Run in `make test` and fails on any
// failed check or error, so the walkthrough cannot rot unseen.
//
// Each step prints the command a user would type (kubectl, or `ip netns exec … curl`) and
// its output, then checks what the step should show with in-process traffic from the same
// namespaces (framework.Get). A check prints "OK" or "NOT OK" and is recorded in the
// Result; a step the lesson cannot go on without (a kubectl command that changes the
// cluster, a wait that runs out) ends Run with an error.
package lesson
