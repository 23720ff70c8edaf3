package guard

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The nesting scan reads strings and escapes as JSON does, whatever way
// the bytes are cut into reads.
func TestJSONDepthScan(t *testing.T) {
	for doc, deepest := range map[string]int{
		`{"a":[1,{"b":"x"}]}`:                      3,
		`{"a":"[[[[{{{{"}`:                         1,
		`{"a":"\"[[[[{{{{"}`:                       1,
		`{"a":"\\"}[[`:                             2,
		`{"a":"\\\"[[[["}`:                         1,
		`[[["\u005b\\",[["]]]]]`:                   5,
		`{"k":"` + strings.Repeat(`\"`, 50) + `"}`: 1,
	} {
		for cut := 1; cut <= len(doc); cut++ {
			for limit := deepest - 1; limit <= deepest; limit++ {
				d := jsonDepth{max: limit}
				var err error
				for rest := []byte(doc); len(rest) > 0 && err == nil; {
					n := min(cut, len(rest))
					err = d.scan(rest[:n])
					rest = rest[n:]
				}
				if limit < deepest {
					assert.ErrorIs(t, err, errTooDeep, "%s, reads of %d, max %d", doc, cut, limit)
				} else {
					assert.NoError(t, err, "%s, reads of %d, max %d", doc, cut, limit)
				}
			}
		}
	}
}

// referenceDepth is the nesting scan as the JSON grammar says it, one byte
// at a time: what scan must agree with, however the bytes are cut.
func referenceDepth(doc []byte, limit int) (deepest int, tooDeep bool) {
	depth, inString, escaped := 0, false, false
	for _, c := range doc {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
			if depth > limit {
				return deepest, true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest, false
}

// The word- and block-at-a-time scan agrees with the byte-at-a-time
// grammar on random documents of quotes, escapes (in half of them),
// brackets and plain bytes, cut into random reads, at every limit around
// their depth.
func TestJSONDepthScanAgreesWithTheGrammar(t *testing.T) {
	vector := hasVector
	t.Cleanup(func() { hasVector = vector })
	for _, hasVector = range []bool{vector, false} { // as here, and as on a CPU without AVX2
		scanAgreesWithTheGrammar(t)
	}
}

func scanAgreesWithTheGrammar(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20000 {
		alphabet := []byte(`"[]{}a:,\`)
		if round%2 == 0 {
			alphabet = alphabet[:len(alphabet)-1] // no escapes: every block is read as a block
		}
		doc := make([]byte, rng.IntN(1200))
		for i := range doc {
			doc[i] = alphabet[rng.IntN(len(alphabet))]
		}
		deepest, _ := referenceDepth(doc, len(doc))
		limit := max(0, deepest-rng.IntN(3))
		_, want := referenceDepth(doc, limit)
		d := jsonDepth{max: limit}
		var err error
		for rest := doc; len(rest) > 0 && err == nil; {
			n := min(1+rng.IntN(300), len(rest))
			err = d.scan(rest[:n])
			rest = rest[n:]
		}
		require.Equal(t, want, errors.Is(err, errTooDeep), "%q at max %d", doc, limit)
	}
}

// FuzzJSONDepthScan: whatever the bytes and however they are cut, the scan
// refuses exactly the documents the grammar says nest deeper than max.
func FuzzJSONDepthScan(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"x\"]["}]}`), uint8(2), uint8(5))
	f.Add([]byte(strings.Repeat(`[{"k":"]]]]"},`, 20)), uint8(3), uint8(64))
	f.Add([]byte(`"\\`+strings.Repeat(`[`, 100)), uint8(50), uint8(7))
	f.Fuzz(func(t *testing.T, doc []byte, limit, cut uint8) {
		_, want := referenceDepth(doc, int(limit))
		d := jsonDepth{max: int(limit)}
		var err error
		for rest := doc; len(rest) > 0 && err == nil; {
			n := min(int(cut)+1, len(rest))
			err = d.scan(rest[:n])
			rest = rest[n:]
		}
		if errors.Is(err, errTooDeep) != want {
			t.Fatalf("%q at max %d in reads of %d: refused %v, the grammar says %v", doc, limit, int(cut)+1, err != nil, want)
		}
	})
}
