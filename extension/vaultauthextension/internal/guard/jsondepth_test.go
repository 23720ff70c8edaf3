package guard

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
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
