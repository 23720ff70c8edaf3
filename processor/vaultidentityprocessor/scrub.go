package vaultidentityprocessor

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// Senders must not be able to write identity attributes anywhere: not as a
// duplicate of a stamped key (OTLP attributes are a list, and pdata keeps
// repeated keys from protobuf and JSON alike), not in another letter case,
// not inside a map-valued attribute. Everything here removes every reserved
// key (identity.IsReserved) at every depth, and first checks read-only, so
// clean data costs one pass over the keys and no write.
//
// The same pass over nested values checks that they nest no deeper than
// OTLP protobuf decoders accept (depth.go): each function reports false
// when one does not, and the request is then refused.

// scrub removes every reserved key from m and from the maps nested in its
// values. It reports whether m's values are exportable.
func scrub(m pcommon.Map) bool {
	reserved, ok := inspect(m)
	if reserved && ok {
		removeReserved(m)
	}
	return ok
}

// scrubValue scrubs the maps inside v (a log body, say) and reports
// whether v is exportable.
func scrubValue(v pcommon.Value) bool {
	if t := v.Type(); t != pcommon.ValueTypeMap && t != pcommon.ValueTypeSlice {
		return true
	}
	if !exportable(v, bodyDepth) {
		return false
	}
	if nestsReserved(v) {
		removeReservedIn(v)
	}
	return true
}

// inspect says whether every value of m is exportable and, if so, whether
// m or a map nested in it has a reserved key. It runs for every attribute
// map of every item: scalar values (almost all) cost a key test and a type
// test. Nested values are walked
// for reserved keys only once known to nest within the limit, so no walk
// here recurses deeper than a decoder would.
func inspect(m pcommon.Map) (reserved, ok bool) {
	for k, v := range m.All() {
		if identity.IsReserved(k) {
			reserved = true
		}
		if t := v.Type(); t == pcommon.ValueTypeMap || t == pcommon.ValueTypeSlice {
			if !exportable(v, attributeDepth) {
				return false, false
			}
			reserved = reserved || nestsReserved(v)
		}
	}
	return reserved, true
}

// hasReserved says whether m or a map nested in it has a reserved key.
func hasReserved(m pcommon.Map) bool {
	for k, v := range m.All() {
		if identity.IsReserved(k) {
			return true
		}
		if t := v.Type(); (t == pcommon.ValueTypeMap || t == pcommon.ValueTypeSlice) && nestsReserved(v) {
			return true
		}
	}
	return false
}

// nestsReserved says whether a map inside v has a reserved key.
func nestsReserved(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		return hasReserved(v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if nestsReserved(s.At(i)) {
				return true
			}
		}
	}
	return false
}

// removeReserved removes every reserved key of m, however often and in
// whatever case it occurs, then does the same in nested maps.
func removeReserved(m pcommon.Map) {
	m.RemoveIf(func(k string, _ pcommon.Value) bool { return identity.IsReserved(k) })
	for _, v := range m.All() {
		removeReservedIn(v)
	}
}

func removeReservedIn(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		removeReserved(v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			removeReservedIn(s.At(i))
		}
	}
}
