package model

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// This file converts one object at a time and runs the checks that need no other object.
// They repeat the CRD's CEL rules (the API server may not have run them: an older CRD, a
// test, an import) and add what CEL cannot express, such as overlaps inside one pool.

// Defaults applied by the model where the CRD leaves a field unset.
const (
	DefaultPeerPort         = 179
	DefaultHoldTime         = 90 * time.Second
	DefaultConnectTime      = 10 * time.Second
	DefaultBFDInterval      = 300 * time.Millisecond
	DefaultDetectMultiplier = 3
	DefaultMinimumTTL       = 254
	DefaultSecretKey        = "password"
)

// problems collects the problems of one object.
type problems struct {
	kind, name string
	list       []Problem
}

func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, Problem{Kind: p.kind, Name: p.name, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (p *problems) ok() bool { return len(p.list) == 0 }

var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	ifaceName    = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]*$`)
	selectorKind = "a label selector"
)

func convertSelectors(p *problems, field string, sels []metav1.LabelSelector) []labels.Selector {
	if len(sels) == 0 {
		return nil
	}
	out := make([]labels.Selector, 0, len(sels))
	for i := range sels {
		s, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err != nil {
			p.add(fmt.Sprintf("%s[%d]", field, i), "not %s: %v", selectorKind, err)
			continue
		}
		out = append(out, s)
	}
	return out
}

func convertPool(obj *v1beta1.IPAddressPool) (*Pool, []Problem) {
	p := &problems{kind: KindIPAddressPool, name: obj.Name}
	pool := &Pool{Name: obj.Name, AutoAssign: obj.Spec.AutoAssign == nil || *obj.Spec.AutoAssign, AvoidBuggyIPs: obj.Spec.AvoidBuggyIPs}
	if len(obj.Spec.Addresses) == 0 {
		p.add("spec.addresses", "a pool needs at least one address entry")
	}
	type entry struct {
		r     Range
		index int
	}
	var entries []entry
	for i, a := range obj.Spec.Addresses {
		rs, err := ParseAddresses(a)
		if err != nil {
			p.add(fmt.Sprintf("spec.addresses[%d]", i), "%v", err)
			continue
		}
		for _, r := range rs {
			entries = append(entries, entry{r, i})
		}
		if !strings.Contains(a, "-") {
			if pfx, err := netip.ParsePrefix(strings.TrimSpace(a)); err == nil {
				pool.CIDRs = append(pool.CIDRs, pfx)
			}
		}
	}
	slices.SortFunc(pool.CIDRs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	slices.SortFunc(entries, func(a, b entry) int { return compareRange(a.r, b.r) })
	for i := 1; i < len(entries); i++ {
		prev, cur := entries[i-1], entries[i]
		if prev.r.Overlaps(cur.r) {
			first, second := prev, cur
			if first.index > second.index {
				first, second = second, first
			}
			p.add(fmt.Sprintf("spec.addresses[%d]", second.index), "%q overlaps %q (spec.addresses[%d]) of the same pool",
				obj.Spec.Addresses[second.index], obj.Spec.Addresses[first.index], first.index)
		}
	}
	for _, e := range entries {
		pool.Ranges = append(pool.Ranges, e.r)
	}
	if sa := obj.Spec.ServiceAllocation; sa != nil {
		a := &ServiceAllocation{Priority: sa.Priority}
		if sa.Priority < 0 {
			p.add("spec.serviceAllocation.priority", "priority must be 0 (unset) or a positive number; lower numbers are tried first")
		}
		for i, ns := range sa.Namespaces {
			if len(ns) > 63 || !dnsLabel.MatchString(ns) {
				p.add(fmt.Sprintf("spec.serviceAllocation.namespaces[%d]", i), "%q is not a namespace name (lowercase letters, digits and -, at most 63 characters)", ns)
			}
		}
		a.Namespaces = slices.Clone(sa.Namespaces)
		a.NamespaceSelectors = convertSelectors(p, "spec.serviceAllocation.namespaceSelectors", sa.NamespaceSelectors)
		a.ServiceSelectors = convertSelectors(p, "spec.serviceAllocation.serviceSelectors", sa.ServiceSelectors)
		pool.Allocation = a
	}
	if m := obj.Spec.DataplaneMode; m != "" {
		mode, err := ParseMode(string(m))
		if err != nil {
			p.add("spec.dataplaneMode", "%v", err)
		}
		pool.DataplaneMode = mode
	}
	return pool, p.list
}

func compareRange(a, b Range) int {
	if c := a.First.Compare(b.First); c != 0 {
		return c
	}
	return a.Last.Compare(b.Last)
}

func checkASN(p *problems, field string, v int64) uint32 {
	if v < 1 || v > 4294967295 {
		p.add(field, "%s must be an AS number from 1 to 4294967295, not %d", field[len("spec."):], v)
		return 0
	}
	return uint32(v)
}

func optionalAddr(p *problems, field, s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	a, err := parseAddr(s)
	if err != nil {
		p.add(field, "%s %q is not an IP address", field[len("spec."):], s)
		return netip.Addr{}
	}
	return a
}

func wholeSeconds(d time.Duration) bool { return d%time.Second == 0 }

func convertPeer(obj *v1beta1.BGPPeer) (*BGPPeer, []Problem) {
	p := &problems{kind: KindBGPPeer, name: obj.Name}
	s := &obj.Spec
	peer := &BGPPeer{
		Name:            obj.Name,
		MyASN:           checkASN(p, "spec.myASN", s.MyASN),
		PeerASN:         checkASN(p, "spec.peerASN", s.PeerASN),
		EBGPMultiHop:    s.EBGPMultiHop,
		Password:        s.Password,
		BFDProfile:      s.BFDProfile,
		StrictBFD:       s.StrictBFD,
		GracefulRestart: s.GracefulRestart,
		Port:            DefaultPeerPort,
	}
	if s.PeerAddress == "" {
		p.add("spec.peerAddress", "peerAddress is required")
	} else {
		peer.Address = optionalAddr(p, "spec.peerAddress", s.PeerAddress)
	}
	if s.PeerPort != nil {
		if *s.PeerPort < 1 || *s.PeerPort > 65535 {
			p.add("spec.peerPort", "peerPort must be a TCP port from 1 to 65535, not %d", *s.PeerPort)
		} else {
			peer.Port = uint16(*s.PeerPort)
		}
	}
	peer.SourceAddress = optionalAddr(p, "spec.sourceAddress", s.SourceAddress)
	if peer.SourceAddress.IsValid() && peer.Address.IsValid() && peer.SourceAddress.Is4() != peer.Address.Is4() {
		p.add("spec.sourceAddress", "sourceAddress and peerAddress must be of the same family (both IPv4 or both IPv6)")
	}
	peer.RouterID = optionalAddr(p, "spec.routerID", s.RouterID)
	if peer.RouterID.IsValid() && !peer.RouterID.Is4() {
		p.add("spec.routerID", "routerID %q is not an IPv4 address; a BGP identifier is 32 bits, written as IPv4", s.RouterID)
	}

	peer.HoldTime = DefaultHoldTime
	if s.HoldTime != nil {
		h := s.HoldTime.Duration
		switch {
		case h != 0 && (h < 3*time.Second || h > 65535*time.Second):
			p.add("spec.holdTime", "holdTime must be 0s or between 3s and 65535s, not %s", h)
		case !wholeSeconds(h):
			p.add("spec.holdTime", "holdTime must be a whole number of seconds, not %s", h)
		default:
			peer.HoldTime = h
		}
	}
	peer.KeepaliveTime = (peer.HoldTime / 3).Truncate(time.Second)
	if s.KeepaliveTime != nil {
		k := s.KeepaliveTime.Duration
		switch {
		case !wholeSeconds(k):
			p.add("spec.keepaliveTime", "keepaliveTime must be a whole number of seconds, not %s", k)
		case peer.HoldTime == 0 && k != 0, peer.HoldTime != 0 && (k <= 0 || k >= peer.HoldTime):
			p.add("spec.keepaliveTime", "keepaliveTime must be above 0s and below holdTime (%s), or 0s when holdTime is 0s; it is %s", peer.HoldTime, k)
		default:
			peer.KeepaliveTime = k
		}
	}
	peer.ConnectTime = DefaultConnectTime
	if s.ConnectTime != nil {
		c := s.ConnectTime.Duration
		if c < time.Second || c > 65535*time.Second || !wholeSeconds(c) {
			p.add("spec.connectTime", "connectTime must be a whole number of seconds from 1s to 65535s, not %s", c)
		} else {
			peer.ConnectTime = c
		}
	}
	if s.EBGPMultiHop && s.MyASN == s.PeerASN {
		p.add("spec.ebgpMultiHop", "ebgpMultiHop applies to eBGP only; this peer is iBGP (myASN equals peerASN)")
	}
	if s.StrictBFD && s.BFDProfile == "" {
		p.add("spec.strictBFD", "strictBFD needs bfdProfile: without a BFD session there is nothing to wait for")
	}
	if len(s.Password) > 80 {
		p.add("spec.password", "password must be at most 80 characters (the TCP MD5 key limit)")
	}
	if ps := s.PasswordSecret; ps != nil {
		if s.Password != "" {
			p.add("spec", "set password or passwordSecret, not both")
		}
		if ps.Name == "" || ps.Namespace == "" {
			p.add("spec.passwordSecret", "passwordSecret needs a name and a namespace")
		}
		key := ps.Key
		if key == "" {
			key = DefaultSecretKey
		}
		peer.PasswordSecret = &SecretRef{Namespace: ps.Namespace, Name: ps.Name, Key: key}
	}
	peer.NodeSelectors = convertSelectors(p, "spec.nodeSelectors", s.NodeSelectors)
	return peer, p.list
}

func convertBFD(obj *v1beta1.BFDProfile) (*BFDProfile, []Problem) {
	p := &problems{kind: KindBFDProfile, name: obj.Name}
	s := &obj.Spec
	prof := &BFDProfile{Name: obj.Name, ReceiveInterval: DefaultBFDInterval, TransmitInterval: DefaultBFDInterval,
		DetectMultiplier: DefaultDetectMultiplier, PassiveMode: s.PassiveMode, MinimumTTL: DefaultMinimumTTL}
	interval := func(field string, v *int32, dst *time.Duration) {
		if v == nil {
			return
		}
		if *v < 10 || *v > 60000 {
			p.add("spec."+field, "%s must be from 10 to 60000 milliseconds, not %d", field, *v)
			return
		}
		*dst = time.Duration(*v) * time.Millisecond
	}
	interval("receiveInterval", s.ReceiveInterval, &prof.ReceiveInterval)
	interval("transmitInterval", s.TransmitInterval, &prof.TransmitInterval)
	if v := s.DetectMultiplier; v != nil {
		if *v < 2 || *v > 255 {
			p.add("spec.detectMultiplier", "detectMultiplier must be from 2 to 255, not %d", *v)
		} else {
			prof.DetectMultiplier = int(*v)
		}
	}
	if v := s.MinimumTTL; v != nil {
		if *v < 1 || *v > 254 {
			p.add("spec.minimumTtl", "minimumTtl must be from 1 to 254, not %d", *v)
		} else {
			prof.MinimumTTL = int(*v)
		}
	}
	return prof, p.list
}

// convertCommunity returns the object's aliases.
func convertCommunity(obj *v1beta1.Community) (map[string]CommunityValue, []Problem) {
	p := &problems{kind: KindCommunity, name: obj.Name}
	out := map[string]CommunityValue{}
	if len(obj.Spec.Communities) == 0 {
		p.add("spec.communities", "a Community needs at least one alias")
	}
	for i, c := range obj.Spec.Communities {
		field := fmt.Sprintf("spec.communities[%d]", i)
		if !IsAliasName(c.Name) {
			p.add(field+".name", "alias name %q must be lowercase letters, digits and - (starting and ending with a letter or digit)", c.Name)
			continue
		}
		if _, dup := out[c.Name]; dup {
			p.add(field+".name", "alias %q is defined twice in this object", c.Name)
			continue
		}
		v, err := ParseCommunity(c.Value)
		if err != nil {
			p.add(field+".value", "%v", err)
			continue
		}
		out[c.Name] = v
	}
	return out, p.list
}

// advertisementCommon is what L2 and BGP advertisements share.
type advertisementCommon struct {
	poolNames     []string
	poolSelectors []labels.Selector
	nodeSelectors []labels.Selector
}

func convertAdvertisementCommon(p *problems, pools []string, poolSels, nodeSels []metav1.LabelSelector) advertisementCommon {
	return advertisementCommon{
		poolNames:     pools,
		poolSelectors: convertSelectors(p, "spec.ipAddressPoolSelectors", poolSels),
		nodeSelectors: convertSelectors(p, "spec.nodeSelectors", nodeSels),
	}
}

func checkInterfaces(p *problems, ifaces []string) {
	for i, name := range ifaces {
		if len(name) > 15 || !ifaceName.MatchString(name) {
			p.add(fmt.Sprintf("spec.interfaces[%d]", i), "%q is not an interface name (letters, digits, -, _ and ., at most 15 characters)", name)
		}
	}
}
