package server

import "github.com/vaultlightstep/vaultlightstep/internal/identity"

// tenantRule names each verified identity's tenant: the value of one of its
// attributes (server.tenant.attribute).
type tenantRule struct{ attribute string }

// resolve adds the tenant to a verified identity, or refuses it: an
// identity that names no tenant cannot be routed anywhere safe. The refusal
// rests on the verified identity, so it may be remembered. A nil rule
// (no tenants) keeps the identity as it is.
func (r *tenantRule) resolve(id *identity.Identity) (*identity.Identity, error) {
	if r == nil {
		return id, nil
	}
	name, ok := id.Get(r.attribute)
	if !ok {
		return nil, refusedChecked(ReasonNoTenant, "the identity has no %s to name its tenant", r.attribute)
	}
	if err := identity.ValidTenant(name); err != nil {
		return nil, refusedChecked(ReasonNoTenant, "%v", err)
	}
	return id.With(identity.Attribute{Key: identity.Tenant, Value: name}), nil
}
