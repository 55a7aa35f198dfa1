package ipam

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

func TestSpecialPurpose(t *testing.T) {
	tests := []struct {
		ip   string
		what string // "" = an ordinary address
	}{
		{"0.0.0.0", "unspecified (this network)"},
		{"0.255.255.255", "unspecified (this network)"},
		{"1.0.0.0", ""},
		{"126.255.255.255", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.255.255", "loopback"},
		{"128.0.0.0", ""},
		{"169.254.1.1", "link-local"},
		{"169.255.0.0", ""},
		{"223.255.255.255", ""},
		{"224.0.0.1", "multicast"},
		{"239.255.255.255", "multicast"},
		{"240.0.0.1", ""},
		{"255.255.255.254", ""},
		{"255.255.255.255", "limited broadcast"},
		{"203.0.113.0", ""},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::2", ""},
		{"fe80::1", "link-local"},
		{"febf:ffff::", "link-local"},
		{"fec0::", ""},
		{"ff02::1", "multicast"},
		{"2001:db8:100::", ""}, // anycast depends on the pool: see Excluded
		{"::ffff:127.0.0.1", "loopback"},
	}
	for _, tc := range tests {
		what, ok := SpecialPurpose(netip.MustParseAddr(tc.ip))
		if what != tc.what || ok != (tc.what != "") {
			t.Errorf("SpecialPurpose(%s) = %q, %v; want %q", tc.ip, what, ok, tc.what)
		}
	}
}

func TestExcluded(t *testing.T) {
	tests := []struct {
		name string
		pool *model.Pool
		want []string
	}{
		{"ordinary pool", pool("p", "203.0.113.0/24", "2001:db8:100::/127"), nil},
		{"0.0.0.0/1 loses this-network and loopback", pool("p", "0.0.0.0/1"),
			[]string{"0.0.0.0/8 (unspecified (this network))", "127.0.0.0/8 (loopback)"}},
		{"127.0.0.0/8 is all loopback", pool("p", "127.0.0.0/8"), []string{"127.0.0.0/8 (loopback)"}},
		{"a range across a block keeps its ordinary part", pool("p", "126.255.255.250-127.0.0.5"),
			[]string{"127.0.0.0-127.0.0.5 (loopback)"}},
		{"the top of the IPv4 space", pool("p", "224.0.0.0/3"),
			[]string{"224.0.0.0/4 (multicast)", "255.255.255.255 (limited broadcast)"}},
		{"link-local", pool("p", "169.254.0.0/24"), []string{"169.254.0.0/24 (link-local)"}},
		{"IPv6 /64 CIDR: the subnet-router anycast address", pool("p", "2001:db8:100::/64"),
			[]string{"2001:db8:100:: (subnet-router anycast of 2001:db8:100::/64)"}},
		{"IPv6 /126 CIDR: the anycast address too", pool("p", "2001:db8:100::/126"),
			[]string{"2001:db8:100:: (subnet-router anycast of 2001:db8:100::/126)"}},
		{"IPv6 /127 and /128: none (RFC 6164)", pool("p", "2001:db8:100::/127", "2001:db8:100::8/128"), nil},
		{"a range covering a whole prefix is taken as written", pool("p", "2001:db8:100::-2001:db8:100::ff"), nil},
		{"IPv6 unspecified and loopback, listed once", pool("p", "::/126"), []string{":: (unspecified)", "::1 (loopback)"}},
		{"IPv6 link-local CIDR: the block, not its anycast address again", pool("p", "fe80::/64"), []string{"fe80::/64 (link-local)"}},
		{"IPv6 multicast", pool("p", "ff02::/120"), []string{"ff02::/120 (multicast)"}},
		{"both families, sorted", pool("p", "2001:db8:100::/64", "127.0.0.0/30"),
			[]string{"127.0.0.0/30 (loopback)", "2001:db8:100:: (subnet-router anycast of 2001:db8:100::/64)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range Excluded(tc.pool) {
				got = append(got, e.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Excluded = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAssignSkipsSpecialPurpose(t *testing.T) {
	// A pool written as the range that the /64 CIDR covers, then as the CIDR.
	rangeOf64 := pool("a", "2001:db8:100::-2001:db8:100::ffff:ffff:ffff:ffff")
	tests := []struct {
		name  string
		steps []step
	}{
		{"0.0.0.0/1: the first Service gets 1.0.0.0, not 0.0.0.0", []step{
			{pools: []*model.Pool{pool("a", "0.0.0.0/1")}},
			{req: req("s1"), want: []string{"1.0.0.0"}},
			{req: req("s2", ips("0.0.0.0")), err: ReasonInvalidRequest},
			{req: req("s3", ips("127.0.0.1")), err: ReasonInvalidRequest},
			{req: req("s4", ips("126.255.255.255")), want: []string{"126.255.255.255"}},
			{req: req("s5", ips("128.0.0.0")), err: ReasonIPNotInPool},
		}},
		{"127.0.0.0/8 hands out nothing", []step{
			{pools: []*model.Pool{pool("lo", "127.0.0.0/8")}},
			{req: req("s1"), err: ReasonPoolExhausted},
			{req: req("s2", ips("127.0.0.1")), err: ReasonInvalidRequest},
		}},
		{"the range skips the loopback block in the middle of the pool", []step{
			{pools: []*model.Pool{pool("a", "126.255.255.254-128.0.0.1")}},
			{req: req("s1"), want: []string{"126.255.255.254"}},
			{req: req("s2"), want: []string{"126.255.255.255"}},
			{req: req("s3"), want: []string{"128.0.0.0"}},
			{req: req("s4"), want: []string{"128.0.0.1"}},
			{req: req("s5"), err: ReasonPoolExhausted},
			{release: "s2"},
			{req: req("s6"), want: []string{"126.255.255.255"}},
		}},
		{"avoidBuggyIPs and the exclusions together", []step{
			{pools: []*model.Pool{avoid(pool("a", "126.255.255.254-127.0.0.1", "169.254.255.255-169.255.0.1"))}},
			{req: req("s1"), want: []string{"126.255.255.254"}}, // .255 is buggy, 127/8 loopback
			{req: req("s2"), want: []string{"169.255.0.1"}},     // 169.254/16 link-local, .0 buggy
			{req: req("s3"), err: ReasonPoolExhausted},
		}},
		{"IPv6 /64: the anycast address is skipped and refused", []step{
			{pools: []*model.Pool{pool("a", "2001:db8:100::/64")}},
			{req: req("s1", v6()), want: []string{"2001:db8:100::1"}},
			{req: req("s2", v6(), ips("2001:db8:100::")), err: ReasonInvalidRequest},
		}},
		{"a range is taken as written: its first address is handed out", []step{
			{pools: []*model.Pool{rangeOf64}},
			{req: req("s1", v6()), want: []string{"2001:db8:100::"}},
			// The same addresses as a CIDR: s1 loses the anycast address and gets another.
			{pools: []*model.Pool{pool("a", "2001:db8:100::/64")}, released: []string{"default/s1"}},
			{req: req("s1", v6()), want: []string{"2001:db8:100::1"}},
		}},
		{"dual stack from a pool with exclusions", []step{
			{pools: []*model.Pool{pool("a", "0.0.0.0/30", "2001:db8:100::/126")}},
			{req: req("s1", dual(RequireDualStack, IPv4, IPv6)), err: ReasonPoolExhausted},
			{pools: []*model.Pool{pool("a", "0.0.0.0/7", "2001:db8:100::/126")}},
			{req: req("s1", dual(RequireDualStack, IPv4, IPv6)), want: []string{"1.0.0.0", "2001:db8:100::1"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { run(t, tc.steps) })
	}
}

// TestStatsExcludeSpecialPurpose: the counts are of addresses that can be handed out.
func TestStatsExcludeSpecialPurpose(t *testing.T) {
	a := New()
	mustSet(t, a, pool("lo", "126.255.255.254-127.0.0.1"), pool("v6", "2001:db8:100::/126"), pool("all", "224.0.0.0/24"))
	if _, err := a.Assign(req("s1", inPool("lo"))); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if got := st["lo"].IPv4; got.InUse != 1 || got.Available.Uint64() != 1 {
		t.Errorf("lo: %+v, want 1 in use and 1 available (127.0.0.0-1 excluded)", got)
	}
	if got := st["v6"].IPv6; got.InUse != 0 || got.Available.Uint64() != 3 {
		t.Errorf("v6: %+v, want 3 available (the anycast address excluded)", got)
	}
	if got := st["all"].IPv4; !got.Offered || got.Available.Uint64() != 0 {
		t.Errorf("all-multicast pool: %+v, want offered with nothing available", got)
	}
}

// TestRestoreRefusesSpecialPurpose: a Service whose status holds a special-purpose
// address (given by an earlier version) does not get it back.
func TestRestoreRefusesSpecialPurpose(t *testing.T) {
	a := New()
	mustSet(t, a, pool("a", "127.0.0.0/8", "2001:db8:100::/64"))
	r := req("s1", dual(PreferDualStack, IPv4, IPv6))
	if got := a.Restore(r, []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("2001:db8:100::")}); len(got) != 0 {
		t.Errorf("Restore claimed %v, want nothing", got)
	}
	if got := a.Restore(r, []netip.Addr{netip.MustParseAddr("2001:db8:100::5")}); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("2001:db8:100::5")}) {
		t.Errorf("Restore claimed %v, want 2001:db8:100::5", got)
	}
}

// TestParseServiceRefusesSpecialPurpose: a requested special-purpose IP is an invalid
// request naming the address, where it came from and what it is.
func TestParseServiceRefusesSpecialPurpose(t *testing.T) {
	for _, tc := range []struct {
		spec, ann string
		fams      []corev1.IPFamily
		want      []string
	}{
		{spec: "127.0.0.1", want: []string{"spec.loadBalancerIP", "127.0.0.1", "loopback"}},
		{ann: "0.0.0.0", want: []string{v1beta1.AnnotationLoadBalancerIPs, "0.0.0.0", "unspecified"}},
		{ann: "255.255.255.255", want: []string{"255.255.255.255", "limited broadcast"}},
		{ann: "224.0.0.5", want: []string{"224.0.0.5", "multicast"}},
		{ann: "169.254.169.254", want: []string{"169.254.169.254", "link-local"}},
		{ann: "203.0.113.5, ff02::1", fams: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}, want: []string{"ff02::1", "multicast"}},
		{ann: "::1", fams: []corev1.IPFamily{corev1.IPv6Protocol}, want: []string{"::1", "loopback"}},
	} {
		fams := tc.fams
		if fams == nil {
			fams = []corev1.IPFamily{corev1.IPv4Protocol}
		}
		pol := corev1.IPFamilyPolicyPreferDualStack
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Annotations: map[string]string{}},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, IPFamilies: fams, IPFamilyPolicy: &pol, LoadBalancerIP: tc.spec},
		}
		if tc.ann != "" {
			svc.Annotations[v1beta1.AnnotationLoadBalancerIPs] = tc.ann
		}
		_, err := ParseService(svc, nil)
		if ReasonOf(err) != ReasonInvalidRequest {
			t.Errorf("%q/%q: %v, want %s", tc.spec, tc.ann, err, ReasonInvalidRequest)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q/%q: %q does not say %q", tc.spec, tc.ann, err, w)
			}
		}
	}
}
