package vaultidentityprocessor

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// scrub removes every vault.* attribute: only the processor may write them.
func scrub(m pcommon.Map) {
	m.RemoveIf(isVaultAttribute)
}

func isVaultAttribute(k string, _ pcommon.Value) bool {
	return strings.HasPrefix(k, identity.Prefix)
}

// stamp scrubs m and writes the configured attributes of id into it (nil id:
// scrub only). Capacity is reserved once, so a map grows at most once.
func (s *stamper) stamp(m pcommon.Map, id *identity.Identity) {
	scrub(m)
	if id == nil {
		return
	}
	m.EnsureCapacity(m.Len() + len(s.cfg.Attributes))
	for _, k := range s.cfg.Attributes {
		if v := id.Get(k); v != "" {
			m.PutStr(k, v)
		}
	}
}

// forLevel returns the identities to stamp at the resource and at the item
// (span, log record, data point) level: one of them is nil.
func (s *stamper) forLevel(id *identity.Identity) (resource, item *identity.Identity) {
	if s.stampResource {
		return id, nil
	}
	return nil, id
}
