package vaultidentityprocessor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The fast path must be in use with the pdata this module builds with: if a
// pdata upgrade changes the layout, the scrub stays correct (pcommon alone)
// but costs twice as much, and this test says so.
func TestRawLayoutHolds(t *testing.T) {
	require.True(t, rawScanOK, "pdata's attribute layout no longer matches rawKeyValue: update rawscan.go")
}

// surelyClean answers "clean" for exactly the maps with no reserved key and
// no map or slice value, on attributes decoded from the wire by both OTLP
// codecs (a wrong layout or type word would let a forged key skip the
// scrub). Each single-attribute map of the forged list, every attribute
// map of the forged documents, and clean maps are all checked.
func TestSurelyCleanOnWireData(t *testing.T) {
	js := forgedTracesJSON("ent-1")
	fromJSON, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(js))
	require.NoError(t, err)
	pb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(fromJSON)
	require.NoError(t, err)
	fromProto, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(pb)
	require.NoError(t, err)

	for name, td := range map[string]ptrace.Traces{"json": fromJSON, "protobuf": fromProto} {
		t.Run(name, func(t *testing.T) {
			checked, dirty := 0, 0
			check := func(where string, m pcommon.Map) {
				checked++
				want := cleanByTest(m)
				if !want {
					dirty++
				}
				assert.Equal(t, want, surelyClean(m), "%s: %d attributes", where, m.Len())
			}
			rs := td.ResourceSpans().At(0)
			forged := rs.Resource().Attributes()
			// Every forged attribute alone, and after clean ones.
			for k, v := range forged.All() {
				for _, prefix := range []int{0, 1, 6} {
					m := pcommon.NewMap()
					for i := range prefix {
						m.PutStr("http.attr."+strings.Repeat("x", i), "v")
					}
					v.CopyTo(m.PutEmpty(k))
					check("forged "+k, m)
				}
			}
			// Every map in the document as decoded.
			check("resource", forged)
			check("scope", rs.ScopeSpans().At(0).Scope().Attributes())
			span := rs.ScopeSpans().At(0).Spans().At(0)
			check("span", span.Attributes())
			check("event", span.Events().At(0).Attributes())
			check("link", span.Links().At(0).Attributes())
			// Clean maps say clean: the fast path is really taken.
			clean := pcommon.NewMap()
			check("empty", clean)
			clean.PutStr("service.name", "checkout")
			clean.PutInt("http.status_code", 200)
			clean.PutBool("ok", true)
			clean.PutDouble("ratio", 0.5)
			clean.PutEmptyBytes("raw").FromRaw([]byte("x"))
			clean.PutEmpty("nothing")
			clean.PutStr("vaulted", "not reserved")
			clean.PutStr("vaul", "not reserved")
			check("clean", clean)
			assert.Greater(t, dirty, 30)
			assert.Greater(t, checked, dirty)
		})
	}
}

func TestSurelyFlat(t *testing.T) {
	for _, tc := range []struct {
		v    pcommon.Value
		flat bool
	}{
		{pcommon.NewValueStr("x"), true},
		{pcommon.NewValueInt(1), true},
		{pcommon.NewValueEmpty(), true},
		{pcommon.NewValueMap(), false},
		{pcommon.NewValueSlice(), false},
	} {
		assert.Equal(t, tc.flat, surelyFlat(tc.v), tc.v.Type().String())
	}
}

// cleanByTest is the definition surelyClean must match, written with
// pcommon and the invariant's own key test.
func cleanByTest(m pcommon.Map) bool {
	for k, v := range m.All() {
		if reservedByTest(k) || v.Type() == pcommon.ValueTypeMap || v.Type() == pcommon.ValueTypeSlice {
			return false
		}
	}
	return true
}
