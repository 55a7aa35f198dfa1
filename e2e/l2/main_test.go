package l2

import (
	"os"
	"testing"

	"github.com/loadstone-lb/loadstone/e2e/framework"
)

func TestMain(m *testing.M) { os.Exit(framework.Main(m, framework.Options{})) }
