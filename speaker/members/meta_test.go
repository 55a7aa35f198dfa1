package members

import (
	"net"
	"testing"
)

func TestMACCodec(t *testing.T) {
	a := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	b := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	long := net.HardwareAddr{1, 2, 3, 4, 5, 6, 7, 8} // InfiniBand-style: skipped
	got := decodeMACs(encodeMACs([]net.HardwareAddr{a, long, b}))
	if len(got) != 2 || got[0].String() != a.String() || got[1].String() != b.String() {
		t.Fatalf("round trip: %v", got)
	}
	var many []net.HardwareAddr
	for i := range 100 {
		many = append(many, net.HardwareAddr{0x02, 0, 0, 0, 1, byte(i)})
	}
	if n := len(decodeMACs(encodeMACs(many))); n != maxMACs {
		t.Errorf("100 MACs encode to %d, want the cap %d", n, maxMACs)
	}
	if got := decodeMACs([]byte{1, 2, 3}); len(got) != 0 {
		t.Errorf("a partial address decodes to %v", got)
	}
	// The 512-byte memberlist limit holds with the flags byte.
	if n := 1 + len(encodeMACs(many)); n > 512 {
		t.Errorf("metadata of %d bytes", n)
	}
}

func TestOwnerOfMAC(t *testing.T) {
	a := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	all := map[string]Member{
		"n1": {Name: "n1", MACs: []net.HardwareAddr{{0x02, 0, 0, 0, 0, 9}, a}},
		"n2": {Name: "n2"},
	}
	if got := OwnerOfMAC(all, a); got != "n1" {
		t.Errorf("owner of %s = %q, want n1", a, got)
	}
	if got := OwnerOfMAC(all, net.HardwareAddr{0x02, 0, 0, 0, 0, 7}); got != "" {
		t.Errorf("owner of an unknown MAC = %q", got)
	}
}
