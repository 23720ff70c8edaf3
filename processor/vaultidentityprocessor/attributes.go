package vaultidentityprocessor

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// stamp is what one request writes: the configured attributes that have a
// value for its identity. It lives on the stack, built once per request.
type stamp struct {
	n    int
	keys [4]string
	vals [4]string
}

func (s *stamper) stampFor(id *identity.Identity) stamp {
	var st stamp
	if id == nil {
		return st
	}
	for _, k := range s.cfg.Attributes {
		if v := id.Get(k); v != "" {
			st.keys[st.n], st.vals[st.n] = k, v
			st.n++
		}
	}
	return st
}

// owns says whether k is an attribute this stamp writes.
func (st *stamp) owns(k string) bool {
	for i := 0; i < st.n; i++ {
		if st.keys[i] == k {
			return true
		}
	}
	return false
}

// forged says whether k is a vault.* attribute that st does not write. It
// runs for every attribute of every item: the first byte rules out almost
// every key before a prefix comparison.
func (st *stamp) forged(k string) bool {
	return len(k) > len(identity.Prefix) && k[0] == 'v' && strings.HasPrefix(k, identity.Prefix) && !st.owns(k)
}

// apply removes every vault.* attribute of m that st does not write, then
// writes st. A read-only scan comes first, so the common case (nothing
// forged) costs one pass over the keys; a value already holding the
// verified string is left alone, so re-stamping allocates nothing.
func (st *stamp) apply(m pcommon.Map) {
	for k := range m.All() {
		if st.forged(k) {
			m.RemoveIf(func(k string, _ pcommon.Value) bool { return st.forged(k) })
			break
		}
	}
	for i := 0; i < st.n; i++ {
		if v, ok := m.Get(st.keys[i]); ok && v.Type() == pcommon.ValueTypeStr && v.Str() == st.vals[i] {
			continue
		}
		m.PutStr(st.keys[i], st.vals[i])
	}
}

// none is the empty stamp: applying it only scrubs.
var none stamp

// scrub removes every vault.* attribute: only the processor may write them.
func scrub(m pcommon.Map) { none.apply(m) }

// forLevel returns the stamps for the resource and for the items (spans,
// log records, data points): one of them is empty.
func (s *stamper) forLevel(id *identity.Identity) (resource, item stamp) {
	if s.stampResource {
		return s.stampFor(id), none
	}
	return none, s.stampFor(id)
}
