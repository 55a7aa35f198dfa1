package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

func main() {
	os.Exit(run())
}

func usage() {
	fmt.Fprintf(os.Stderr, `usage: lab [flags] up|walkthrough|status|env|down

flags:
`)
	flag.PrintDefaults()
}

func run() int {
	dir := flag.String("dir", "", "lab directory (default $LOADSTONE_LAB_DIR or "+lab.DefaultDir+")")
	nodes := flag.Int("nodes", lab.DefaultNodes, "number of nodes")
	k8sBin := flag.String("k8s-bin", "", "directory of the Kubernetes binaries (default: hack/k8s-binaries.sh's cache)")
	verbose := flag.Bool("v", false, "debug logs")
	prebuilt := flag.String("prebuilt", "", "use these binaries instead of building them: name=path,... (names: nodeagent, controller, speaker, lab)")
	flag.Usage = usage
	flag.Parse()
	if flag.NArg() < 1 {
		usage()
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(newProgressHandler(os.Stderr, level))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pre, err := lab.ParsePrebuilt(*prebuilt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 2
	}
	cfg := lab.Config{Dir: *dir, Nodes: *nodes, K8sBin: *k8sBin, Log: log, Prebuilt: pre}

	switch flag.Arg(0) {
	case "up":
		err = cmdUp(ctx, cfg)
	case "walkthrough":
		err = cmdWalkthrough(ctx, cfg)
	case "status":
		err = cmdStatus(ctx, cfg)
	case "env":
		err = cmdEnv(cfg)
	case "apiproxy":
		// Internal: the relay Up starts (LISTEN NETNS TARGET).
		if flag.NArg() != 4 {
			usage()
			return 2
		}
		err = lab.ServeAPIProxy(ctx, flag.Arg(1), flag.Arg(2), flag.Arg(3), log)
	case "down":
		err = cmdDown(ctx, cfg)
	default:
		usage()
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		return 1
	}
	return 0
}

func cmdUp(ctx context.Context, cfg lab.Config) error {
	l, err := lab.New(cfg)
	if err != nil {
		return err
	}
	if err := l.Up(ctx); err != nil {
		return fmt.Errorf("%w\nlogs: %s/logs; remove the lab with `make lab-down`", err, l.Dir())
	}
	printUsage(os.Stdout, l)
	return nil
}

func cmdDown(ctx context.Context, cfg lab.Config) error {
	l, err := lab.Open(cfg)
	if err != nil {
		return err
	}
	if err := l.Down(ctx); err != nil {
		return err
	}
	fmt.Println("lab removed (logs stay in " + l.Dir() + "/logs until the next `lab up`)")
	return nil
}

func cmdEnv(cfg lab.Config) error {
	l, err := lab.Open(cfg)
	if err != nil {
		return err
	}
	fmt.Printf("export KUBECONFIG=%s\n", l.AdminKubeconfig())
	fmt.Printf("export PATH=%s:$PATH\n", l.K8sBin())
	fmt.Printf("export LOADSTONE_LAB_DIR=%s\n", l.Dir())
	return nil
}
