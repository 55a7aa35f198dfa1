package members

import (
	"maps"
	"net"
	"slices"
)

// maxMACs bounds the published MAC list: 80 × 6 bytes plus the flags byte fit memberlist's
// 512-byte metadata limit.
const maxMACs = 80

// encodeMACs packs Ethernet addresses, 6 bytes each; others are skipped.
func encodeMACs(macs []net.HardwareAddr) []byte {
	var b []byte
	for _, m := range macs {
		if len(m) == 6 && len(b) < maxMACs*6 {
			b = append(b, m...)
		}
	}
	return b
}

// decodeMACs unpacks encodeMACs; a trailing partial address is ignored.
func decodeMACs(b []byte) []net.HardwareAddr {
	var out []net.HardwareAddr
	for len(b) >= 6 {
		out = append(out, net.HardwareAddr(slices.Clone(b[:6])))
		b = b[6:]
	}
	return out
}

// OwnerOfMAC returns the member that publishes mac, or "" when none does (then the MAC is
// not a speaker's). Members are searched in name order, so the answer is deterministic.
func OwnerOfMAC(all map[string]Member, mac net.HardwareAddr) string {
	for _, name := range slices.Sorted(maps.Keys(all)) {
		for _, m := range all[name].MACs {
			if m.String() == mac.String() {
				return name
			}
		}
	}
	return ""
}
