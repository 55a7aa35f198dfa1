package maglev

// The two hashes of a backend ID are part of the cross-node (and cross-version) contract:
// every node must place every backend in the same slots, including nodes that run
// different Loadstone releases during a rolling upgrade. Never change the seeds or the
// functions below without a migration plan; TestGoldenTable pins their output.
const (
	offsetSeed uint64 = 0x6c6f616473746f6e // "loadston"
	skipSeed   uint64 = 0x6d61676c65762d32 // "maglev-2"
)

const (
	fnvOffset64 uint64 = 14695981039346656037
	fnvPrime64  uint64 = 1099511628211
)

// hashID is 64-bit FNV-1a over the ID, started from the FNV offset basis XOR seed,
// followed by the MurmurHash3 64-bit finalizer so that every output bit depends on every
// input bit (plain FNV-1a mixes the last bytes poorly, and IDs such as "10.0.0.1:8080" and
// "10.0.0.2:8080" differ in few bits).
func hashID(seed uint64, id string) uint64 {
	h := fnvOffset64 ^ seed
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= fnvPrime64
	}
	return fmix64(h)
}

// fmix64 is the finalizer of MurmurHash3 (a bijection on uint64 with full avalanche).
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
