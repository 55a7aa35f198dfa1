package main

import (
	"context"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

func cmdWalkthrough(ctx context.Context, cfg lab.Config) error {
	return cmdUp(ctx, cfg)
}
