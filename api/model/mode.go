package model

import (
	"fmt"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// Mode is a dataplane mode: who carries the traffic to a Service's load balancer IPs on
// the node that receives it.
type Mode string

// The dataplane modes (the values of IPAddressPool spec.dataplaneMode and of the
// loadstone.io/dataplane-mode Service annotation).
const (
	// ModePods: Loadstone's dataplane DNATs to pod IPs, chosen by a Maglev table that is
	// the same on every node. The controller writes ipMode Proxy.
	ModePods = Mode(v1beta1.DataplaneModePods)
	// ModeNodePort: Loadstone's dataplane forwards to the NodePorts of the nodes with
	// ready endpoints. The controller writes ipMode Proxy.
	ModeNodePort = Mode(v1beta1.DataplaneModeNodePort)
	// ModeOff: kube-proxy serves the IP; Loadstone only announces it. The controller
	// writes ipMode VIP.
	ModeOff = Mode(v1beta1.DataplaneModeOff)
)

// DefaultDataplaneMode is the mode of a Service whose pool has no spec.dataplaneMode and
// which has no loadstone.io/dataplane-mode annotation.
//
// It is ModePods: Loadstone's own dataplane carries the IP (ipMode Proxy), so the LB path
// does not depend on kube-proxy. A pool or a Service opts out with mode off.
const DefaultDataplaneMode = ModePods

// ParseMode checks a mode as written in a pool or an annotation.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModePods, ModeNodePort, ModeOff:
		return m, nil
	}
	if s == "false" {
		// What a typed client makes of a bare off in YAML, which YAML 1.1 reads as false.
		return "", fmt.Errorf("dataplane mode %q is not one of pods, nodeport or off (YAML reads a bare off as false: write \"off\" in quotes)", s)
	}
	return "", fmt.Errorf("dataplane mode %q is not one of pods, nodeport or off", s)
}

// Serves reports whether Loadstone's own dataplane serves the IPs in this mode (pods or
// nodeport): their ingress ipMode is then Proxy, so kube-proxy leaves them alone.
func (m Mode) Serves() bool { return m == ModePods || m == ModeNodePort }

// DataplaneMode is the effective dataplane mode of a Service whose IP comes from pool
// (one name: a Service's IPs come from one pool), given the Service's annotations: the
// loadstone.io/dataplane-mode annotation when it is valid, else the pool's
// spec.dataplaneMode, else DefaultDataplaneMode. A pool that cfg does not hold (or a nil
// cfg) counts as a pool without the field.
//
// An annotation with another value is an error; the mode returned with it is the one the
// Service would have without the annotation, so a caller that must pick something has a
// deterministic answer. The controller instead reports the error in an Event and keeps the
// ipMode the Service has.
func DataplaneMode(cfg *Config, pool string, annotations map[string]string) (Mode, error) {
	fallback := DefaultDataplaneMode
	if cfg != nil {
		if p := cfg.Pools[pool]; p != nil && p.DataplaneMode != "" {
			fallback = p.DataplaneMode
		}
	}
	v, ok := annotations[v1beta1.AnnotationDataplaneMode]
	if !ok {
		return fallback, nil
	}
	m, err := ParseMode(v)
	if err != nil {
		return fallback, fmt.Errorf("annotation %s: %w", v1beta1.AnnotationDataplaneMode, err)
	}
	return m, nil
}
