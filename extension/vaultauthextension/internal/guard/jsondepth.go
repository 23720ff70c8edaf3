package guard

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// errTooDeep is what a body nesting beyond max_json_depth gets.
var errTooDeep = errors.New("the OTLP/JSON body nests deeper than this receiver accepts")

// jsonDepth follows the nesting of a JSON document as its bytes stream by,
// without decoding it: brackets outside strings, escapes inside them. It
// does not validate the document (the decoder does); it only stops one
// whose nesting would make the decoder recurse (and allocate) without bound.
type jsonDepth struct {
	max      int
	depth    int
	inString bool
	escaped  bool // the last read ended in a backslash inside a string
}

// scan reads the next bytes and fails once the nesting exceeds max.
//
// Between backslashes (found with bytes.IndexByte) it reads 64 bytes at a
// time where the CPU has vector instructions (scanBlocks), then eight
// bytes at a time as one word (scanWords): which bytes are quotes and
// brackets is a few operations on the word, which of them are inside
// strings is the parity of the quotes before them (carried from word to
// word), and the nesting moves by the opening brackets outside strings
// less the closing ones. Backslashes and the bytes they escape, the last
// few bytes, and every byte while the nesting is within nearLimit of max
// are read one at a time: exact, and linear in the bytes whatever they are.
func (j *jsonDepth) scan(p []byte) error {
	depth, inString, escaped := j.depth, j.inString, j.escaped
	var err error
	end := -1 // the next backslash at or after i (len(p): none); found again once passed
	for i := 0; i < len(p); {
		if end < i {
			end = len(p)
			if k := bytes.IndexByte(p[i:], '\\'); k >= 0 {
				end = i + k
			}
		}
		fast := end // the fast paths read up to the backslash, none when the first byte is escaped
		if escaped {
			fast = i
		}
		var n int
		n, depth, inString = j.scanBlocks(p[i:fast], depth, inString)
		i += n
		n, depth, inString = j.scanWords(p[i:fast], depth, inString)
		i += n
		if i+8 <= fast {
			// Stopped near max: one byte at a time until the nesting is well
			// below it, so that a document hovering at the limit costs a
			// byte loop, never a fast path started again for each word.
			for i < len(p) && (depth > j.max-nearLimit || escaped) {
				stop := min(i+nearLimit, len(p))
				if depth, inString, escaped, err = j.scanBytes(p[i:stop], depth, inString, escaped); err != nil {
					return err
				}
				i = stop
			}
			continue
		}
		// One at a time: the escaped byte, or up to the backslash and the
		// byte it escapes, or the last few bytes.
		stop := min(end+2, len(p))
		if escaped {
			stop = min(i+8, len(p))
		}
		if depth, inString, escaped, err = j.scanBytes(p[i:stop], depth, inString, escaped); err != nil {
			return err
		}
		i = stop
	}
	j.depth, j.inString, j.escaped = depth, inString, escaped
	return nil
}

// nearLimit is how far below max the nesting must fall before the fast
// paths read again (a block holds at most 64 openings).
const nearLimit = 64

// scanWords reads p (which holds no backslash) a word at a time, up to
// its last whole word or to a word whose openings could pass max, and
// returns how many bytes it read.
func (j *jsonDepth) scanWords(p []byte, depth int, inString bool) (int, int, bool) {
	n := len(p)
	carry := highBits & -b2u(inString) // every byte inside a string, or none
	for ; len(p) >= 8; p = p[8:] {
		x := binary.LittleEndian.Uint64(p)
		quotes := highBits &^ nonZero(x^(lowBits*'"'))
		// A quote count's parity is its low bit: the running counts (one
		// byte each, at most 8) come from one multiplication.
		in := ((quotes>>7)*lowBits<<7)&highBits ^ carry
		folded := x &^ (lowBits * 0x20) // '{' and '}' become '[' and ']'
		opens := count(highBits &^ (nonZero(folded^(lowBits*'[')) | in))
		if depth+opens > j.max {
			break
		}
		depth += opens - count(highBits&^(nonZero(folded^(lowBits*']'))|in))
		carry = highBits & uint64(int64(in)>>63)
	}
	return n - len(p), depth, carry != 0
}

// scanBytes is scan one byte at a time.
func (j *jsonDepth) scanBytes(p []byte, depth int, inString, escaped bool) (int, bool, bool, error) {
	i := 0
	if escaped {
		i = 1 // the first byte is escaped
	}
	for ; i < len(p); i++ {
		c := p[i]
		if inString {
			switch c {
			case '"':
				inString = false
			case '\\':
				i++ // the byte it escapes
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > j.max {
				return depth, inString, false, errTooDeep
			}
		case '}', ']':
			depth--
		}
	}
	// i is len(p)+1 when p ended in a backslash: its byte opens the next read.
	return depth, inString, i > len(p), nil
}

const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
	low7Bits = 0x7f7f7f7f7f7f7f7f
)

// nonZero sets the high bit of each byte of y that is not zero (exactly:
// no carry crosses a byte); the other bits are noise.
func nonZero(y uint64) uint64 { return (y&low7Bits + low7Bits) | y }

// count is how many bytes of m have their high bit set (m has no other
// bit set): a multiplication sums them into the top byte, with no call
// (bits.OnesCount64 checks for POPCNT, and spills the loop around it).
func count(m uint64) int { return int((m >> 7) * lowBits >> 56) }

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
