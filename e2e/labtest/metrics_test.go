package labtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
	"github.com/loadstone-lb/loadstone/internal/nsthread"
)

// scrape GETs http://addr/metrics from inside network namespace ns.
func scrape(ns, addr string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		var c net.Conn
		err := nsthread.DoNamed(ns, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, a)
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestMetricsEndpoints scrapes the real /metrics of the controller and of every speaker
// in the lab and runs promlint on what they serve (controller-runtime's and Go's metrics
// included); each serves loadstone_build_info.
func TestMetricsEndpoints(t *testing.T) {
	e := framework.Setup(t)
	targets := map[string]string{lab.ControlPlaneNS: "127.0.0.1:7472"}
	for _, n := range e.Lab.Nodes() {
		targets[n.Name] = "127.0.0.1:7572"
	}
	for ns, addr := range targets {
		var body string
		e.Eventually("metrics of "+ns, time.Minute, func() (bool, error) {
			var err error
			body, err = scrape(ns, addr)
			return err == nil && strings.Contains(body, "loadstone_build_info{"), err
		})
		problems, err := promlint.New(strings.NewReader(body)).Lint()
		if err != nil {
			t.Errorf("%s: parsing the exposition: %v", ns, err)
		}
		for _, p := range problems {
			t.Errorf("%s: promlint: %s: %s", ns, p.Metric, p.Text)
		}
		t.Logf("%s: %d lines, %d promlint problems", ns, strings.Count(body, "\n"), len(problems))
	}
}
