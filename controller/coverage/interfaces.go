package coverage

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// InterfaceReport is what one node's ServiceL2Status says about interfaces.
type InterfaceReport struct {
	Node string
	// Interfaces the node answers on (so it has them).
	Interfaces []string
	// Missing are the (advertisement, interface) pairs the node lacks.
	Missing []v1beta1.MissingInterface
}

// Verdict is the InterfacesFound condition of one L2Advertisement, without times.
type Verdict struct {
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// InterfaceConditions returns the InterfacesFound verdict of each advertisement that names
// interfaces (ads maps its name to the interfaces its spec names). An interface makes
// the condition False when at least one node reported it missing for that advertisement
// and no node reported answering on it; nodes report only for the IPs they are elected
// for, so "no node" means "no node that reported". Pure.
func InterfaceConditions(ads map[string][]string, reports []InterfaceReport) map[string]Verdict {
	have := map[string]map[string]bool{}       // interface → nodes answering on it
	missing := map[[2]string]map[string]bool{} // (advertisement, interface) → nodes lacking it
	add := func(m map[string]bool, n string) map[string]bool {
		if m == nil {
			m = map[string]bool{}
		}
		m[n] = true
		return m
	}
	for _, r := range reports {
		for _, i := range r.Interfaces {
			have[i] = add(have[i], r.Node)
		}
		for _, m := range r.Missing {
			k := [2]string{m.L2Advertisement, m.Interface}
			missing[k] = add(missing[k], r.Node)
		}
	}
	out := map[string]Verdict{}
	for name, ifaces := range ads {
		if len(ifaces) == 0 {
			continue
		}
		names := slices.Clone(ifaces)
		slices.Sort(names)
		var absent, partial []string
		for _, i := range slices.Compact(names) {
			lacking := missing[[2]string{name, i}]
			if len(lacking) == 0 {
				continue
			}
			nodes := strings.Join(slices.Sorted(maps.Keys(lacking)), ", ")
			if len(have[i]) == 0 {
				absent = append(absent, fmt.Sprintf("%q (missing on %s)", i, nodes))
			} else {
				partial = append(partial, fmt.Sprintf("%q (missing on %s, present on %s)", i, nodes,
					strings.Join(slices.Sorted(maps.Keys(have[i])), ", ")))
			}
		}
		switch {
		case len(absent) > 0:
			out[name] = Verdict{Status: metav1.ConditionFalse, Reason: v1beta1.ReasonInterfaceMissing,
				Message: "no node elected for this advertisement's addresses has interface " + strings.Join(absent, ", ") +
					"; check the spelling of spec.interfaces"}
		case len(partial) > 0:
			out[name] = Verdict{Status: metav1.ConditionTrue, Reason: v1beta1.ReasonInterfacesFound,
				Message: "some elected nodes lack interface " + strings.Join(partial, ", ")}
		default:
			out[name] = Verdict{Status: metav1.ConditionTrue, Reason: v1beta1.ReasonInterfacesFound,
				Message: "no elected node reported a named interface missing"}
		}
	}
	return out
}
