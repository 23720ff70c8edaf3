package guard

import "errors"

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
	escaped  bool // the previous byte, inside a string, was a backslash
}

// jsonSpecial marks the bytes the scan acts on; every other byte costs one
// table read.
var jsonSpecial = func() (t [256]bool) {
	for _, c := range []byte(`"\{}[]`) {
		t[c] = true
	}
	return t
}()

// scan reads the next bytes and fails once the nesting exceeds max.
func (j *jsonDepth) scan(p []byte) error {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !jsonSpecial[c] {
			j.escaped = false
			continue
		}
		switch {
		case j.inString:
			switch {
			case j.escaped:
				j.escaped = false
			case c == '\\':
				j.escaped = true
			case c == '"':
				j.inString = false
			}
		case c == '"':
			j.inString = true
		case c == '{' || c == '[':
			if j.depth++; j.depth > j.max {
				return errTooDeep
			}
		case c == '}' || c == ']':
			j.depth--
		}
	}
	return nil
}
