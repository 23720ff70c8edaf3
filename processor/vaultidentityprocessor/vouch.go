package vaultidentityprocessor

import (
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// A gateway behind node agents: an agent identifies each of its senders
// by its pod (vaultauth server.kubernetes_pods) and stamps each resource
// with that sender's identity. The gateway keeps those stamps only from
// the vouchers it is configured with, and adds who vouched.

// vouchers are the trusted vouchers and what a vouched resource keeps.
type vouchers struct {
	by map[string]bool // entity names and ids
	// keep are the attributes of a vouched identity, as the agent stamped
	// them: the configured ones but the credential's HMAC and the tenant,
	// which describe the request (the voucher's), not the resource.
	keep []string
}

func newVouchers(cfg *Config) *vouchers {
	if len(cfg.Vouchers) == 0 {
		return nil
	}
	v := &vouchers{by: map[string]bool{}}
	for _, name := range cfg.Vouchers {
		v.by[name] = true
	}
	for _, k := range cfg.Attributes {
		if k != identity.CredentialHMAC && k != identity.Tenant {
			v.keep = append(v.keep, k)
		}
	}
	return v
}

// vouches says whether id (a request's verified sender) is a voucher.
func (v *vouchers) vouches(id *identity.Identity) bool {
	if v == nil || id == nil {
		return false
	}
	if v.by[id.EntityID()] {
		return true
	}
	name, ok := id.Get(identity.EntityName)
	return ok && v.by[name]
}

// voucherStamp is what a voucher's vouched resource gets beside the
// identity it carries: who vouched, and the request's own attributes
// (the HMAC of the voucher's credential, the tenant).
func (st *stamp) voucherStamp(id *identity.Identity) {
	st.nv = 0
	add := func(k, v string) {
		st.voucher[st.nv] = identity.Attribute{Key: k, Value: v}
		st.nv++
	}
	add(identity.VouchedByEntityID, id.EntityID())
	if name, ok := id.Get(identity.EntityName); ok {
		add(identity.VouchedByEntityName, name)
	}
	for i := 0; i < st.n; i++ {
		if k := st.attrs[i].Key; k == identity.CredentialHMAC || k == identity.Tenant {
			add(k, st.attrs[i].Value)
		}
	}
}

// applyResource stamps a resource: a voucher's resource that carries a
// well-formed vouched identity keeps it (every other reserved key
// removed); any other gets the request's identity (apply).
func (st *stamp) applyResource(m pcommon.Map) bool {
	if st.vouch != nil {
		if kept, ok := st.vouch.vouched(m); ok {
			if _, ok := inspect(m); !ok {
				return false
			}
			removeReserved(m)
			for _, a := range kept {
				m.PutStr(a.Key, a.Value)
			}
			for i := 0; i < st.nv; i++ {
				m.PutStr(st.voucher[i].Key, st.voucher[i].Value)
			}
			return true
		}
	}
	return st.apply(m)
}

// vouched reads the identity a voucher stamped on m: each kept key at most
// once, a string, vault.entity.id among them. Anything else (a key twice,
// a non-string value) is not a stamp the voucher's processor makes, and m
// gets the voucher's own identity instead.
func (v *vouchers) vouched(m pcommon.Map) ([]identity.Attribute, bool) {
	var kept []identity.Attribute
	entity := ""
	for k, val := range m.All() {
		if !identity.IsReserved(k) || !slices.Contains(v.keep, k) {
			continue
		}
		if val.Type() != pcommon.ValueTypeStr || slices.ContainsFunc(kept, func(a identity.Attribute) bool { return a.Key == k }) {
			return nil, false
		}
		kept = append(kept, identity.Attribute{Key: k, Value: val.Str()})
		if k == identity.EntityID {
			entity = val.Str()
		}
	}
	return kept, entity != ""
}
