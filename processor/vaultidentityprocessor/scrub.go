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

// scrub removes every reserved key from m and from the maps nested in its values.
func scrub(m pcommon.Map) {
	if !surelyClean(m) && hasReserved(m) {
		removeReserved(m)
	}
}

// scrubValue scrubs the maps inside v (a log body, say).
func scrubValue(v pcommon.Value) {
	if !surelyFlat(v) && nestsReserved(v) {
		removeReservedIn(v)
	}
}

// hasReserved says whether m or a map nested in it has a reserved key. It
// runs for every attribute map of every item: scalar values (almost all)
// cost a key test and a type test, with no call.
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
