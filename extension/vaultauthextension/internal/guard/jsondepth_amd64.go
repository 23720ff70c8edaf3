//go:build !purego

package guard

import (
	"math/bits"

	"golang.org/x/sys/cpu"
)

// structuralMasks is in jsondepth_amd64.s.
//
//go:noescape
func structuralMasks(p []byte, out []uint64)

// hasVector says whether structuralMasks can run here.
var hasVector = cpu.X86.HasAVX2

// blocksPerCall is how many 64-byte blocks one structuralMasks call reads
// (their masks live on the stack): few, so that a scan stopping near max
// has computed little it does not use.
const blocksPerCall = 16

// scanBlocks reads p (which holds no backslash) 64 bytes at a time, up to
// its last whole block or to a block whose openings could pass max, and
// returns how many bytes it read. The vector instructions find the
// quotes and brackets of a block; which brackets are inside strings is
// the running parity of the quotes (a prefix XOR), carried from block to
// block.
func (j *jsonDepth) scanBlocks(p []byte, depth int, inString bool) (int, int, bool) {
	if !hasVector || len(p) < 64 {
		return 0, depth, inString
	}
	n := len(p)
	carry := -b2u(inString) // every bit set inside a string, none outside
	var masks [3 * blocksPerCall]uint64
	for len(p) >= 64 {
		blocks := min(len(p)/64, blocksPerCall)
		structuralMasks(p[:blocks*64], masks[:])
		for k := range blocks {
			m := masks[3*k : 3*k+3 : 3*k+3]
			in := prefixXOR(m[0]) ^ carry
			opens := bits.OnesCount64(m[1] &^ in)
			if depth+opens > j.max {
				return n - len(p), depth, carry != 0
			}
			depth += opens - bits.OnesCount64(m[2]&^in)
			carry = uint64(int64(in) >> 63)
			p = p[64:]
		}
	}
	return n - len(p), depth, carry != 0
}

// prefixXOR sets each bit of x to the parity of the bits up to it.
func prefixXOR(x uint64) uint64 {
	x ^= x << 1
	x ^= x << 2
	x ^= x << 4
	x ^= x << 8
	x ^= x << 16
	x ^= x << 32
	return x
}
