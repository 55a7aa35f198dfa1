package config_test

// crdCase is one object for the API server and what must come back.
type crdCase struct {
	name string
	yaml string
	// want must be a substring of the rejection; notWant must not be (to catch a rule that
	// fires on the wrong input and buries the intended message).
	want    string
	notWant []string
	// modelWant is what api/model says instead, when its message differs from the API
	// server's (schema-level rules such as "Too long" or "Duplicate value").
	modelWant string
}

const (
	poolHead = "apiVersion: loadstone.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bad}\nspec:\n"
	l2Head   = "apiVersion: loadstone.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: bad}\nspec:\n"
	peerHead = "apiVersion: loadstone.io/v1beta1\nkind: BGPPeer\nmetadata: {name: bad}\nspec:\n  myASN: 64512\n  peerASN: 64500\n"
	advHead  = "apiVersion: loadstone.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bad}\nspec:\n"
	bfdHead  = "apiVersion: loadstone.io/v1beta1\nkind: BFDProfile\nmetadata: {name: bad}\nspec:\n"
	commHead = "apiVersion: loadstone.io/v1beta1\nkind: Community\nmetadata: {name: bad}\nspec:\n"
)

// invalidCases are rejected by the CRDs' schema and CEL rules; each names the message a
// person sees.
var invalidCases = []crdCase{
	// IPAddressPool addresses.
	{name: "pool/no addresses", yaml: poolHead + "  addresses: []\n", want: "spec.addresses: Invalid value",
		modelWant: `a pool needs at least one address entry`},
	{name: "pool/garbage", yaml: poolHead + "  addresses: [hello]\n",
		want:      `spec.addresses[0]: Invalid value: "hello": "hello" is neither a CIDR such as 203.0.113.0/24 nor a range`,
		modelWant: `spec.addresses[0]: "hello" is neither a CIDR such as 203.0.113.0/24 nor a range`},
	{name: "pool/bare address", yaml: poolHead + "  addresses: [203.0.113.7]\n", want: `"203.0.113.7" is neither a CIDR`},
	{name: "pool/prefix too long", yaml: poolHead + "  addresses: [203.0.113.0/33]\n", want: `"203.0.113.0/33" is neither a CIDR`},
	{name: "pool/second entry bad", yaml: poolHead + "  addresses: [203.0.113.0/24, 2001:db8:100::/129]\n",
		want:      `spec.addresses[1]: Invalid value: "2001:db8:100::/129": "2001:db8:100::/129" is neither a CIDR`,
		modelWant: `spec.addresses[1]: "2001:db8:100::/129" is neither a CIDR`},
	{name: "pool/leading zeros", yaml: poolHead + "  addresses: [203.0.113.010/32]\n", want: "is neither a CIDR"},
	{name: "pool/host bits", yaml: poolHead + "  addresses: [203.0.113.5/24]\n",
		want: `"203.0.113.5/24" has address bits set after the prefix length`},
	{name: "pool/host bits v6", yaml: poolHead + "  addresses: [\"2001:db8:100::1/64\"]\n",
		want: "has address bits set after the prefix length"},
	{name: "pool/range with three parts", yaml: poolHead + "  addresses: [203.0.113.1-203.0.113.2-203.0.113.3]\n", want: "is neither a CIDR"},
	{name: "pool/range with a CIDR end", yaml: poolHead + "  addresses: [203.0.113.0/24-203.0.113.255]\n", want: "is neither a CIDR"},
	{name: "pool/range mixes families", yaml: poolHead + "  addresses: [\"203.0.113.1-2001:db8:100::1\"]\n",
		want: `range "203.0.113.1-2001:db8:100::1" mixes IPv4 and IPv6`, notWant: []string{"reversed"}},
	{name: "pool/range reversed", yaml: poolHead + "  addresses: [203.0.113.20-203.0.113.10]\n",
		want: `range "203.0.113.20-203.0.113.10" is reversed: the first address must not be above the last`},
	{name: "pool/range reversed by one octet digit", yaml: poolHead + "  addresses: [203.0.113.100-203.0.113.99]\n", want: "is reversed"},
	{name: "pool/range v6 reversed", yaml: poolHead + "  addresses: [\"2001:db8:100::10-2001:db8:100::f\"]\n", want: "is reversed"},
	{name: "pool/range v6 reversed across ::", yaml: poolHead + "  addresses: [\"2001:db8:100:0:1::-2001:db8:100::ffff\"]\n", want: "is reversed"},
	{name: "pool/v4-mapped v6", yaml: poolHead + "  addresses: [\"::ffff:203.0.113.0/120\"]\n", want: "is neither a CIDR"},
	{name: "pool/duplicate entry", yaml: poolHead + "  addresses: [203.0.113.0/24, 203.0.113.0/24]\n", want: "Duplicate value",
		modelWant: `spec.addresses[1]: "203.0.113.0/24" overlaps "203.0.113.0/24" (spec.addresses[0]) of the same pool`},
	{name: "pool/too long", yaml: poolHead + "  addresses: [\"" + longString(91) + "\"]\n", want: "Too long",
		modelWant: `is neither a CIDR`},
	{name: "pool/negative priority", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  serviceAllocation: {priority: -1}\n",
		want: "priority must be 0 (unset) or a positive number"},
	{name: "pool/bad namespace", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  serviceAllocation: {namespaces: [Payments]}\n",
		want: `"Payments" is not a namespace name`},
	{name: "pool/selector bad operator", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  serviceAllocation:\n    serviceSelectors:\n    - matchExpressions: [{key: a, operator: Equals, values: [b]}]\n",
		want:      "a matchExpressions operator must be In, NotIn, Exists or DoesNotExist",
		modelWant: `"Equals" is not a valid label selector operator`},
	{name: "pool/selector In without values", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  serviceAllocation:\n    namespaceSelectors:\n    - matchExpressions: [{key: a, operator: In}]\n",
		want:      "a matchExpressions entry with operator In or NotIn needs at least one value",
		modelWant: `for 'in', 'notin' operators, values set can't be empty`},
	{name: "pool/selector Exists with values", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  serviceAllocation:\n    namespaceSelectors:\n    - matchExpressions: [{key: a, operator: Exists, values: [x]}]\n",
		want:      "a matchExpressions entry with operator Exists or DoesNotExist takes no values",
		modelWant: `values set must be empty for exists and does not exist`},
	{name: "pool/unknown dataplane mode", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  dataplaneMode: xdp\n",
		want:      `spec.dataplaneMode: Unsupported value: "xdp": supported values: "pods", "nodeport", "off"`,
		modelWant: `spec.dataplaneMode: dataplane mode "xdp" is not one of pods, nodeport or off`},
	{name: "pool/dataplane mode in capitals", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  dataplaneMode: Pods\n",
		want:      `spec.dataplaneMode: Unsupported value: "Pods"`,
		modelWant: `dataplane mode "Pods" is not one of pods, nodeport or off`},
	{name: "pool/dataplane mode off unquoted (YAML reads false)", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  dataplaneMode: off\n",
		want:      `spec.dataplaneMode: Invalid value: "boolean": spec.dataplaneMode in body must be of type string`,
		modelWant: `spec.dataplaneMode: dataplane mode "false" is not one of pods, nodeport or off (YAML reads a bare off as false: write "off" in quotes)`},
	{name: "pool/dataplane mode is not the ipMode", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  dataplaneMode: Proxy\n",
		want:      `supported values: "pods", "nodeport", "off"`,
		modelWant: `dataplane mode "Proxy" is not one of pods, nodeport or off`},

	// L2Advertisement.
	{name: "l2/interface with slash", yaml: l2Head + "  interfaces: [eth0/1]\n", want: `"eth0/1" is not an interface name`},
	{name: "l2/interface too long", yaml: l2Head + "  interfaces: [abcdefghijklmnop]\n", want: "Too long",
		modelWant: `"abcdefghijklmnop" is not an interface name`},
	{name: "l2/node selector NotIn without values", yaml: l2Head + "  nodeSelectors:\n  - matchExpressions: [{key: a, operator: NotIn, values: []}]\n",
		want:      "spec.nodeSelectors: Invalid value: a matchExpressions entry with operator In or NotIn needs at least one value",
		modelWant: `spec.nodeSelectors[0]: not a label selector: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty`},

	// BGPPeer.
	{name: "peer/missing address", yaml: peerHead, want: "spec.peerAddress: Required value",
		modelWant: `spec.peerAddress: peerAddress is required`},
	{name: "peer/ASN zero", yaml: peerHead + "  peerAddress: 192.0.2.1\n  myASN: 0\n", want: "myASN must be an AS number from 1 to 4294967295"},
	{name: "peer/ASN too big", yaml: peerHead + "  peerAddress: 192.0.2.1\n  peerASN: 4294967296\n", want: "peerASN must be an AS number from 1 to 4294967295"},
	{name: "peer/bad address", yaml: peerHead + "  peerAddress: 192.0.2.300\n", want: `peerAddress "192.0.2.300" is not an IP address`},
	{name: "peer/hostname", yaml: peerHead + "  peerAddress: router.example\n", want: `peerAddress "router.example" is not an IP address`},
	{name: "peer/port zero", yaml: peerHead + "  peerAddress: 192.0.2.1\n  peerPort: 0\n", want: "peerPort must be a TCP port from 1 to 65535"},
	{name: "peer/port too big", yaml: peerHead + "  peerAddress: 192.0.2.1\n  peerPort: 65536\n", want: "peerPort must be a TCP port from 1 to 65535"},
	{name: "peer/source family", yaml: peerHead + "  peerAddress: 192.0.2.1\n  sourceAddress: \"2001:db8:1::11\"\n",
		want: "sourceAddress and peerAddress must be of the same family"},
	{name: "peer/bad source", yaml: peerHead + "  peerAddress: 192.0.2.1\n  sourceAddress: eth0\n", want: `sourceAddress "eth0" is not an IP address`,
		notWant: []string{"same family"}},
	{name: "peer/router ID v6", yaml: peerHead + "  peerAddress: 192.0.2.1\n  routerID: \"2001:db8::1\"\n", want: `routerID "2001:db8::1" is not an IPv4 address`},
	{name: "peer/hold time not a duration", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: ninety\n",
		want: "holdTime must be a duration such as 90s or 1m30s", notWant: []string{"keepaliveTime"}},
	{name: "peer/hold time days", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 1d\n", want: "holdTime must be a duration"},
	{name: "peer/hold time 2s", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 2s\n", want: "holdTime must be 0s or between 3s and 65535s"},
	{name: "peer/hold time too long", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 20h\n", want: "holdTime must be 0s or between 3s and 65535s"},
	{name: "peer/hold time fraction", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 3500ms\n", want: "holdTime must be a whole number of seconds"},
	{name: "peer/keepalive equals hold", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 9s\n  keepaliveTime: 9s\n",
		want:      "keepaliveTime must be above 0s and below holdTime (90s when unset)",
		modelWant: `keepaliveTime must be above 0s and below holdTime (9s), or 0s when holdTime is 0s; it is 9s`},
	{name: "peer/keepalive above default hold", yaml: peerHead + "  peerAddress: 192.0.2.1\n  keepaliveTime: 2m\n", want: "keepaliveTime must be above 0s and below holdTime"},
	{name: "peer/keepalive with hold 0", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 0s\n  keepaliveTime: 3s\n", want: "or 0s when holdTime is 0s"},
	{name: "peer/keepalive zero", yaml: peerHead + "  peerAddress: 192.0.2.1\n  keepaliveTime: 0s\n", want: "keepaliveTime must be above 0s"},
	{name: "peer/keepalive garbage", yaml: peerHead + "  peerAddress: 192.0.2.1\n  keepaliveTime: soon\n", want: "keepaliveTime must be a duration such as 30s"},
	{name: "peer/connect time zero", yaml: peerHead + "  peerAddress: 192.0.2.1\n  connectTime: 0s\n", want: "connectTime must be a whole number of seconds from 1s to 65535s"},
	{name: "peer/password and secret", yaml: peerHead + "  peerAddress: 192.0.2.1\n  password: x\n  passwordSecret: {name: s, namespace: ns}\n",
		want: "set password or passwordSecret, not both"},
	{name: "peer/password too long", yaml: peerHead + "  peerAddress: 192.0.2.1\n  password: " + longString(81) + "\n", want: "Too long",
		modelWant: `password must be at most 80 characters`},
	{name: "peer/secret without name", yaml: peerHead + "  peerAddress: 192.0.2.1\n  passwordSecret: {namespace: ns}\n", want: "spec.passwordSecret.name: Required value",
		modelWant: `passwordSecret needs a name and a namespace`},
	{name: "peer/keepalive above hold", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 9s\n  keepaliveTime: 10s\n",
		want:      "keepaliveTime must be above 0s and below holdTime (90s when unset)",
		modelWant: `keepaliveTime must be above 0s and below holdTime (9s), or 0s when holdTime is 0s; it is 10s`},
	{name: "peer/keepalive fraction", yaml: peerHead + "  peerAddress: 192.0.2.1\n  keepaliveTime: 1500ms\n",
		want: "keepaliveTime must be a whole number of seconds", notWant: []string{"below holdTime"}},
	{name: "peer/hold time negative", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: -3s\n", want: "holdTime must be a duration such as 90s",
		modelWant: "holdTime must be 0s or between 3s and 65535s, not -3s"},
	{name: "peer/connect time too long", yaml: peerHead + "  peerAddress: 192.0.2.1\n  connectTime: 65536s\n", want: "connectTime must be a whole number of seconds from 1s to 65535s"},
	{name: "peer/connect time fraction", yaml: peerHead + "  peerAddress: 192.0.2.1\n  connectTime: 1500ms\n", want: "connectTime must be a whole number of seconds from 1s to 65535s"},
	{name: "peer/strictBFD without bfdProfile", yaml: peerHead + "  peerAddress: 192.0.2.1\n  strictBFD: true\n",
		want: "strictBFD needs bfdProfile: without a BFD session there is nothing to wait for"},
	{name: "peer/strictBFD with empty bfdProfile", yaml: peerHead + "  peerAddress: 192.0.2.1\n  strictBFD: true\n  bfdProfile: \"\"\n",
		want: "strictBFD needs bfdProfile"},
	{name: "peer/multihop on iBGP", yaml: "apiVersion: loadstone.io/v1beta1\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {myASN: 64512, peerASN: 64512, peerAddress: 192.0.2.1, ebgpMultiHop: true}\n",
		want: "ebgpMultiHop applies to eBGP only"},

	// BGPAdvertisement.
	{name: "adv/aggregation too long", yaml: advHead + "  aggregationLength: 33\n", want: "aggregationLength must be an IPv4 prefix length from 0 to 32"},
	{name: "adv/aggregation v6 negative", yaml: advHead + "  aggregationLengthV6: -1\n", want: "aggregationLengthV6 must be an IPv6 prefix length from 0 to 128"},
	{name: "adv/aggregation negative", yaml: advHead + "  aggregationLength: -1\n", want: "aggregationLength must be an IPv4 prefix length from 0 to 32"},
	{name: "adv/aggregation v6 too long", yaml: advHead + "  aggregationLengthV6: 129\n", want: "aggregationLengthV6 must be an IPv6 prefix length from 0 to 128",
		notWant: []string{"IPv4 prefix length"}},
	{name: "adv/local pref negative", yaml: advHead + "  localPref: -1\n", want: "localPref must be from 0 to 4294967295"},
	{name: "adv/local pref too big", yaml: advHead + "  localPref: 4294967296\n", want: "localPref must be from 0 to 4294967295"},
	{name: "adv/community part too big", yaml: advHead + "  communities: [\"65536:1\"]\n", want: `"65536:1" is not a community: use AA:NN`},
	{name: "adv/community too many parts", yaml: advHead + "  communities: [\"1:2:3:4\"]\n", want: `"1:2:3:4" is not a community`},
	{name: "adv/large community part too big", yaml: advHead + "  communities: [\"4294967296:1:1\"]\n", want: "is not a community"},
	{name: "adv/community alias uppercase", yaml: advHead + "  communities: [NoExport]\n", want: `"NoExport" is not a community`},
	{name: "adv/community empty part", yaml: advHead + "  communities: [\"65000:\"]\n", want: "is not a community"},
	{name: "adv/community with two parts and large prefix", yaml: advHead + "  communities: [\"large:1:2\"]\n", want: `"large:1:2" is not a community`},
	{name: "adv/community negative part", yaml: advHead + "  communities: [\"-1:5\"]\n", want: `"-1:5" is not a community`},
	{name: "adv/community with spaces", yaml: advHead + "  communities: [\"64500: 1\"]\n", want: `"64500: 1" is not a community`},
	{name: "adv/pool selector bad operator", yaml: advHead + "  ipAddressPoolSelectors:\n  - matchExpressions: [{key: a, operator: Gt, values: [\"1\"]}]\n",
		want:      "a matchExpressions operator must be In, NotIn, Exists or DoesNotExist",
		modelWant: `"Gt" is not a valid label selector operator`},

	// BFDProfile.
	{name: "bfd/receive too fast", yaml: bfdHead + "  receiveInterval: 9\n", want: "receiveInterval must be from 10 to 60000 milliseconds"},
	{name: "bfd/transmit too slow", yaml: bfdHead + "  transmitInterval: 60001\n", want: "transmitInterval must be from 10 to 60000 milliseconds"},
	{name: "bfd/receive too slow", yaml: bfdHead + "  receiveInterval: 60001\n", want: "receiveInterval must be from 10 to 60000 milliseconds"},
	{name: "bfd/receive zero", yaml: bfdHead + "  receiveInterval: 0\n", want: "receiveInterval must be from 10 to 60000 milliseconds"},
	{name: "bfd/transmit too fast", yaml: bfdHead + "  transmitInterval: 9\n", want: "transmitInterval must be from 10 to 60000 milliseconds",
		notWant: []string{"receiveInterval"}},
	{name: "bfd/transmit negative", yaml: bfdHead + "  transmitInterval: -300\n", want: "transmitInterval must be from 10 to 60000 milliseconds"},
	{name: "bfd/multiplier 1", yaml: bfdHead + "  detectMultiplier: 1\n", want: "detectMultiplier must be from 2 to 255"},
	{name: "bfd/multiplier 256", yaml: bfdHead + "  detectMultiplier: 256\n", want: "detectMultiplier must be from 2 to 255"},
	{name: "bfd/ttl 0", yaml: bfdHead + "  minimumTtl: 0\n", want: "minimumTtl must be from 1 to 254"},
	{name: "bfd/ttl 255", yaml: bfdHead + "  minimumTtl: 255\n", want: "minimumTtl must be from 1 to 254"},

	// Community.
	{name: "community/empty", yaml: commHead + "  communities: []\n", want: "spec.communities: Invalid value",
		modelWant: `a Community needs at least one alias`},
	{name: "community/bad value", yaml: commHead + "  communities: [{name: a, value: \"70000:1\"}]\n", want: `"70000:1" is not a community value`},
	{name: "community/alias as value", yaml: commHead + "  communities: [{name: a, value: other}]\n", want: `"other" is not a community value`},
	{name: "community/bad name", yaml: commHead + "  communities: [{name: \"-x\", value: \"1:1\"}]\n", want: `alias name "-x" must be lowercase letters`},
	{name: "community/name with colon", yaml: commHead + "  communities: [{name: \"a:b\", value: \"1:1\"}]\n", want: `alias name "a:b"`},
	{name: "community/duplicate name", yaml: commHead + "  communities: [{name: a, value: \"1:1\"}, {name: a, value: \"1:2\"}]\n", want: "Duplicate value",
		modelWant: `spec.communities[1].name: alias "a" is defined twice in this object`},
}

// validCases are edge cases the rules must not reject.
var validCases = []crdCase{
	{name: "pool/v4 range with spaces", yaml: poolHead + "  addresses: [\"203.0.113.10 - 203.0.113.20\"]\n"},
	{name: "pool/single-address range", yaml: poolHead + "  addresses: [203.0.113.9-203.0.113.9]\n"},
	{name: "pool/range across octet width", yaml: poolHead + "  addresses: [203.0.113.99-203.0.113.100]\n"},
	{name: "pool/v6 range across ::", yaml: poolHead + "  addresses: [\"2001:db8:100::ffff-2001:db8:100:0:1::\"]\n"},
	{name: "pool/v6 upper case range", yaml: poolHead + "  addresses: [\"2001:DB8:100::A-2001:db8:100::b\"]\n"},
	{name: "pool/host routes", yaml: poolHead + "  addresses: [203.0.113.77/32, \"2001:db8:100::77/128\"]\n"},
	{name: "pool/whole v6 space", yaml: poolHead + "  addresses: [\"::/0\"]\n"},
	{name: "pool/many entries", yaml: poolHead + "  addresses: [" + manyRanges(100) + "]\n"},
	{name: "pool/dataplane mode pods", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  dataplaneMode: pods\n"},
	{name: "pool/dataplane mode nodeport", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  dataplaneMode: nodeport\n"},
	{name: "pool/dataplane mode off", yaml: poolHead + "  addresses: [203.0.113.0/24]\n  dataplaneMode: \"off\"\n"},
	{name: "peer/hold time zero, no keepalive", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 0s\n"},
	{name: "peer/hold 0 and keepalive 0", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: \"0\"\n  keepaliveTime: 0s\n"},
	{name: "peer/minute durations", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 3m\n  keepaliveTime: 1m0s\n  connectTime: 65535s\n"},
	{name: "peer/v6 with source", yaml: peerHead + "  peerAddress: \"2001:db8:1::1\"\n  sourceAddress: \"2001:db8:1::11\"\n  routerID: 192.0.2.11\n"},
	{name: "peer/strictBFD with a profile", yaml: peerHead + "  peerAddress: 192.0.2.1\n  bfdProfile: fast\n  strictBFD: true\n"},
	{name: "peer/keepalive one below hold", yaml: peerHead + "  peerAddress: 192.0.2.1\n  holdTime: 3s\n  keepaliveTime: 2s\n  connectTime: 1s\n"},
	{name: "peer/max ASN, iBGP", yaml: "apiVersion: loadstone.io/v1beta1\nkind: BGPPeer\nmetadata: {name: ok}\nspec: {myASN: 4294967295, peerASN: 4294967295, peerAddress: 192.0.2.1, peerPort: 65535}\n"},
	{name: "adv/communities", yaml: advHead + "  communities: [\"0:0\", \"65535:65535\", \"4294967295:0:4294967295\", \"large:1:2:3\", my-alias, \"7\"]\n  aggregationLength: 0\n  aggregationLengthV6: 64\n  localPref: 0\n"},
	{name: "adv/aggregation upper bounds", yaml: advHead + "  aggregationLength: 32\n  aggregationLengthV6: 128\n  localPref: 4294967295\n"},
	{name: "bfd/lower bounds", yaml: bfdHead + "  receiveInterval: 60000\n  transmitInterval: 10\n  detectMultiplier: 2\n  minimumTtl: 254\n"},
	{name: "bfd/bounds", yaml: bfdHead + "  receiveInterval: 10\n  transmitInterval: 60000\n  detectMultiplier: 255\n  minimumTtl: 1\n  passiveMode: true\n"},
}

func longString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

// manyRanges is n distinct small v6 ranges, the most expensive entries for the CEL rules.
func manyRanges(n int) string {
	s := ""
	for i := range n {
		if i > 0 {
			s += ", "
		}
		s += "\"2001:db8:100:" + itoa(i) + "::1-2001:db8:100:" + itoa(i) + "::ffff\""
	}
	return s
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
