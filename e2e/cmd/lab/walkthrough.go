package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/loadstone-lb/loadstone/e2e/lab"
	"github.com/loadstone-lb/loadstone/e2e/lesson"
)

// cmdWalkthrough brings the lab up and runs the Services lesson (package lesson, the same
// code TestServicesLesson runs in make test) in namespace default, printing every step.
func cmdWalkthrough(ctx context.Context, cfg lab.Config) error {
	l, err := lab.New(cfg)
	if err != nil {
		return err
	}
	fmt.Println("== Bringing the lab up (a real cluster in network namespaces) ==")
	if err := l.Up(ctx); err != nil {
		return fmt.Errorf("%w\nlogs: %s/logs; remove the lab with `make lab-down`", err, l.Dir())
	}
	cs, err := l.AdminClient()
	if err != nil {
		return err
	}
	res, err := lesson.Run(ctx, lesson.Config{Lab: l, Client: cs, Out: os.Stdout})
	fmt.Println()
	failed := res.Failed()
	if len(failed) > 0 {
		fmt.Println("== Checks that failed ==")
		for _, c := range failed {
			fmt.Printf("  - %s: %s\n", c.Step, strings.ReplaceAll(c.Msg, "\n", "\n    "))
		}
		fmt.Println()
	}
	printUsage(os.Stdout, l)
	if err != nil {
		return fmt.Errorf("the walkthrough stopped: %w", err)
	}
	if len(failed) > 0 {
		// The lab stays up for a look, but make must not report success.
		return fmt.Errorf("%d of %d checks of the walkthrough failed (listed above)", len(failed), len(res.Checks))
	}
	fmt.Printf("All %d checks of the walkthrough passed.\n", len(res.Checks))
	return nil
}
