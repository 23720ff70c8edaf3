package vaultidentityprocessor

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// maxAttributes bounds the attributes one processor stamps, so a stamp
// lives on the stack and "seen" fits a bit mask.
const maxAttributes = 16

// stamp is what one request writes: the configured attributes that its
// identity has. Built once per request, on the stack.
type stamp struct {
	n     int
	attrs [maxAttributes]identity.Attribute
	// vouch is set when the request's sender is a voucher (vouch.go):
	// its resources that carry a vouched identity keep it, with voucher.
	vouch   *vouchers
	nv      int
	voucher [maxAttributes + 2]identity.Attribute
}

// stampFor picks the configured attributes id has (none for a nil id).
func (s *stamper) stampFor(id *identity.Identity, st *stamp) {
	st.n, st.vouch = 0, nil
	if id == nil {
		return
	}
	for _, k := range s.cfg.Attributes {
		if v, ok := id.Get(k); ok {
			st.attrs[st.n] = identity.Attribute{Key: k, Value: v}
			st.n++
		}
	}
	if s.vouchers.vouches(id) {
		st.vouch = s.vouchers
		st.voucherStamp(id)
	}
}

// apply makes m hold each attribute of st exactly once, with st's value,
// and no other reserved key at any depth. The common cases (nothing forged:
// fresh data, or data an agent stamped with the same identity) are one
// read-only pass and allocate nothing. It reports false, and may leave m
// half-stamped, when a value of m nests deeper than OTLP protobuf decoders
// accept: the request is then refused whole.
func (st *stamp) apply(m pcommon.Map) bool {
	if st.n == 0 {
		return scrub(m)
	}
	var seen uint32
	for k, v := range m.All() {
		if identity.IsReserved(k) {
			i := st.index(k)
			if i < 0 || seen&(1<<i) != 0 || v.Type() != pcommon.ValueTypeStr || v.Str() != st.attrs[i].Value {
				return st.rewrite(m)
			}
			seen |= 1 << i
			continue
		}
		if t := v.Type(); t == pcommon.ValueTypeMap || t == pcommon.ValueTypeSlice {
			if !exportable(v, attributeDepth) {
				return false
			}
			if nestsReserved(v) {
				return st.rewrite(m)
			}
		}
	}
	for i := 0; i < st.n; i++ {
		if seen&(1<<i) == 0 {
			m.PutStr(st.attrs[i].Key, st.attrs[i].Value) // absent: appended
		}
	}
	return true
}

// rewrite removes every reserved key, then appends st's attributes.
func (st *stamp) rewrite(m pcommon.Map) bool {
	if _, ok := inspect(m); !ok {
		return false
	}
	removeReserved(m)
	for i := 0; i < st.n; i++ {
		m.PutStr(st.attrs[i].Key, st.attrs[i].Value)
	}
	return true
}

// index is the position of key (compared exactly) in st, or -1.
func (st *stamp) index(key string) int {
	for i := 0; i < st.n; i++ {
		if st.attrs[i].Key == key {
			return i
		}
	}
	return -1
}
