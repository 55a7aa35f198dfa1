package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

func cmdStatus(ctx context.Context, cfg lab.Config) error {
	l, err := lab.Open(cfg)
	if err != nil {
		return err
	}
	s := l.State()
	if len(s.Procs) == 0 && len(s.Netns) == 0 {
		fmt.Println("no lab is running in " + l.Dir())
		return nil
	}
	fmt.Printf("lab in %s, %d nodes\n\n", l.Dir(), s.Nodes)
	fmt.Printf("%-28s %-8s %-10s %s\n", "PROCESS", "PID", "NETNS", "STATE")
	for _, p := range s.Procs {
		state := "running"
		if !p.Alive() {
			state = "EXITED (see " + p.Log + ")"
		}
		fmt.Printf("%-28s %-8d %-10s %s\n", p.Name, p.PID, p.Netns, state)
	}
	fmt.Println()
	printUsage(os.Stdout, l)
	return nil
}

// printUsage tells how to use a running lab.
func printUsage(w io.Writer, l *lab.Lab) {
	fmt.Fprintf(w, `The lab is running. To use it:

  export KUBECONFIG=%[1]s
  export PATH=%[2]s:$PATH          # kubectl %[3]s
  kubectl get nodes -o wide

  ip netns exec %[4]s curl http://<node-ip>:<nodePort>/    # the client, behind the router
  ip netns exec %[4]s curl http://<EXTERNAL-IP>/
  ip netns exec %[5]s vtysh --vty_socket %[6]s -c 'show bgp summary'
  ip netns exec <ls-nodeN> nft list ruleset                     # kube-proxy's tables

  logs: %[7]s/logs     status: go run ./e2e/cmd/lab status
  remove it: make lab-down
`, l.AdminKubeconfig(), l.K8sBin(), lab.K8sVersion, lab.ClientNS, lab.RouterNS, l.FRRDir(), l.Dir())
}
