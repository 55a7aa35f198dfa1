package model

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// Kinds of the objects a Problem is about.
const (
	KindIPAddressPool    = "IPAddressPool"
	KindL2Advertisement  = "L2Advertisement"
	KindBGPPeer          = "BGPPeer"
	KindBGPAdvertisement = "BGPAdvertisement"
	KindBFDProfile       = "BFDProfile"
	KindCommunity        = "Community"
)

// Problem is one thing wrong with one object. An object with any problem does not have its
// current spec in force (see Build).
type Problem struct {
	// Kind and Name identify the object (all kinds are cluster-scoped).
	Kind, Name string
	// Field is the path of the offending field in the object, such as
	// "spec.addresses[1]"; empty when the problem is the whole object.
	Field string
	// Message says what is wrong, for a person.
	Message string
}

// String formats the problem as `Kind "name": field: message`.
func (p Problem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("%s %q: %s", p.Kind, p.Name, p.Message)
	}
	return fmt.Sprintf("%s %q: %s: %s", p.Kind, p.Name, p.Field, p.Message)
}

// ProblemsOf returns the problems of one object, in order.
func ProblemsOf(problems []Problem, kind, name string) []Problem {
	var out []Problem
	for _, p := range problems {
		if p.Kind == kind && p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

// ValidCondition returns the Valid condition (v1beta1.ConditionValid) of one object after
// Build: True when it has no problem; otherwise False with all its problems in the message
// and reason LastGoodInForce when cfg still holds a version of it, Invalid when not.
func ValidCondition(cfg *Config, problems []Problem, kind, name string, generation int64) metav1.Condition {
	c := metav1.Condition{Type: v1beta1.ConditionValid, ObservedGeneration: generation}
	mine := ProblemsOf(problems, kind, name)
	if len(mine) == 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1beta1.ReasonValid, "in force"
		return c
	}
	msg := ""
	for i, p := range mine {
		if i > 0 {
			msg += "; "
		}
		if p.Field != "" {
			msg += p.Field + ": "
		}
		msg += p.Message
	}
	c.Status = metav1.ConditionFalse
	if cfg.Has(kind, name) {
		c.Reason, c.Message = v1beta1.ReasonLastGoodInForce, msg+"; the last good version stays in force"
	} else {
		c.Reason, c.Message = v1beta1.ReasonInvalid, msg+"; not in force"
	}
	return c
}

// Has reports whether cfg holds a version of the object.
func (c *Config) Has(kind, name string) bool {
	if c == nil {
		return false
	}
	switch kind {
	case KindIPAddressPool:
		return c.Pools[name] != nil
	case KindL2Advertisement:
		return c.L2Advertisements[name] != nil
	case KindBGPPeer:
		return c.BGPPeers[name] != nil
	case KindBGPAdvertisement:
		return c.BGPAdvertisements[name] != nil
	case KindBFDProfile:
		return c.BFDProfiles[name] != nil
	case KindCommunity:
		for _, owner := range c.CommunityOwners {
			if owner == name {
				return true
			}
		}
	}
	return false
}
