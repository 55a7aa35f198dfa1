package nodeagent

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary act as the container start helper (the agents the tests
// run start programs through their own executable: Config.HelperPath defaults to
// /proc/self/exe, as for the nodeagent command), and as a small program the tests run in
// containers ($NODEAGENT_TEST_PROGRAM).
func TestMain(m *testing.M) {
	RunHelperIfRequested()
	if p := os.Getenv("NODEAGENT_TEST_PROGRAM"); p != "" {
		os.Exit(testProgram(p))
	}
	os.Exit(m.Run())
}

// testProgram is a program run in a container by the tests. "rawsocket" prints the
// process's ids and capability sets and exits 0 if it can open a raw IPv4 socket, 1 if
// that is not permitted, 2 on any other error.
func testProgram(name string) int {
	switch name {
	case "rawsocket":
		status, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") || strings.HasPrefix(l, "Cap") {
				fmt.Println(strings.Join(strings.Fields(l), " "))
			}
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err != nil {
			fmt.Println("raw socket:", err)
			if err == unix.EPERM {
				return 1
			}
			return 2
		}
		unix.Close(fd)
		fmt.Println("raw socket: ok")
		return 0
	}
	fmt.Println("unknown test program", name)
	return 2
}
