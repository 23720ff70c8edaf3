package vaultidentityprocessor

import (
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// The scrub looks at every attribute of every item, and pcommon offers no
// way to do that without an indirect call per attribute (Map.All) and a
// type switch per value (Value.Type): together twice the cost of the rest of
// resource-level stamping. surelyClean answers the common question, "no
// reserved key and no nested map here?", from the slice behind the Map
// directly: a loop over keys and type words, with no call.
//
// It relies on pdata's memory layout, so it is only a read-only pre-filter:
// "clean" skips the scrub, anything else goes to the pcommon code in
// scrub.go, which does all removal. The layout is checked once, at start,
// against what pcommon itself reports (rawLayoutHolds); if a pdata release
// changes it, surelyClean answers false and the scrub runs through pcommon
// alone, correct and slower. TestRawLayoutHolds fails in that case, so an
// upgrade cannot lose the fast path unnoticed.

// rawKeyValue mirrors one entry of the slice behind a pcommon.Map
// (pdata's internal.KeyValue: the value's oneof held in an any, the key,
// the key's string-table index).
type rawKeyValue struct {
	value any
	key   string
	_     int32
}

var (
	// mapType and sliceType are the type words a map- or slice-valued
	// attribute holds in its any.
	mapType, sliceType unsafe.Pointer
	rawScanOK          = rawLayoutHolds()
)

// surelyClean reports whether m has no reserved key and no map- or
// slice-valued attribute. False means "look with pcommon", not "dirty".
func surelyClean(m pcommon.Map) bool {
	if !rawScanOK {
		return false
	}
	kvs := rawEntries(m)
	if kvs == nil {
		return false
	}
	for i := range *kvs {
		kv := &(*kvs)[i]
		if identity.IsReserved(kv.key) {
			return false
		}
		if t := typeWord(&kv.value); t == mapType || t == sliceType {
			return false
		}
	}
	return true
}

// surelyFlat reports whether v is neither a map nor a slice (so holds no
// keys). False means "look with pcommon".
func surelyFlat(v pcommon.Value) bool {
	if !rawScanOK {
		return false
	}
	orig := *(**any)(unsafe.Pointer(&v)) // the first word of a pcommon.Value
	if orig == nil {
		return false
	}
	t := typeWord(orig)
	return t != mapType && t != sliceType
}

// rawEntries is the slice behind m: the first word of a pcommon.Map.
func rawEntries(m pcommon.Map) *[]rawKeyValue {
	return *(**[]rawKeyValue)(unsafe.Pointer(&m))
}

func typeWord(v *any) unsafe.Pointer { return (*[2]unsafe.Pointer)(unsafe.Pointer(v))[0] }

// rawLayoutHolds checks the mirror against pcommon on a map with one value
// of every type and records the map and slice type words. Every entry must
// sit where pcommon says its value is (the first word of a pcommon.Value),
// with the key pcommon reports, and the type words must tell maps and
// slices from every other type.
func rawLayoutHolds() bool {
	if unsafe.Sizeof(pcommon.Map{}) != 2*unsafe.Sizeof(uintptr(0)) ||
		unsafe.Sizeof(pcommon.Value{}) != 2*unsafe.Sizeof(uintptr(0)) {
		return false
	}
	m := pcommon.NewMap()
	m.PutStr("str", "v")
	m.PutInt("int", 1)
	m.PutEmptyMap("map").PutStr("k", "v")
	m.PutEmptySlice("slice").AppendEmpty().SetStr("v")
	m.PutBool("bool", true)
	m.PutDouble("double", 1.5)
	m.PutEmptyBytes("bytes").FromRaw([]byte{1})
	m.PutEmpty("empty")
	kvs := rawEntries(m)
	if kvs == nil || len(*kvs) != m.Len() {
		return false
	}
	words := make(map[pcommon.ValueType]unsafe.Pointer, m.Len())
	i := 0
	for k, v := range m.All() {
		kv := &(*kvs)[i]
		if kv.key != k || unsafe.Pointer(&kv.value) != *(*unsafe.Pointer)(unsafe.Pointer(&v)) {
			return false
		}
		words[v.Type()] = typeWord(&kv.value)
		i++
	}
	mapWord, sliceWord := words[pcommon.ValueTypeMap], words[pcommon.ValueTypeSlice]
	if mapWord == nil || sliceWord == nil || len(words) != 8 {
		return false
	}
	for t, w := range words {
		if t != pcommon.ValueTypeMap && t != pcommon.ValueTypeSlice && (w == mapWord || w == sliceWord) {
			return false
		}
	}
	mapType, sliceType = mapWord, sliceWord
	return true
}
