//go:build !amd64 || purego

package guard

// hasVector: no vector form of the scan here.
var hasVector = false

// scanBlocks has no vector form here: scanWords reads everything.
func (j *jsonDepth) scanBlocks(_ []byte, depth int, inString bool) (int, int, bool) {
	return 0, depth, inString
}
