package vaultauthextension

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/client"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// TenantMetadataKey is the client metadata key that carries a request's
// tenant from the receiver to the exporter, through batching
// (sending_queue.batch.partition.metadata_keys) and the persistent queue.
// No sender can send it: ':' is not allowed in an HTTP header or gRPC
// metadata name, so only the server side of vaultauth can set it.
const TenantMetadataKey = "vault:tenant"

// TenantConfig routes each sender's data to a tenant named by one of its
// verified identity attributes (the `server.tenant` block).
type TenantConfig struct {
	// Attribute is the verified attribute that names the tenant:
	// vault.namespace (Vault Enterprise), or one the attributes rules fill,
	// e.g. vault.entity.metadata.team from a token claim or entity metadata.
	Attribute string `mapstructure:"attribute"`

	_ struct{}
}

// Validate checks the `tenant:` block.
func (c *TenantConfig) Validate() error {
	if c.Attribute == "" {
		return errors.New("attribute: required (e.g. vault.namespace, or vault.entity.metadata.team filled by server.attributes)")
	}
	return nil
}

// tenantRule names each verified identity's tenant.
type tenantRule struct{ attribute string }

// resolve adds the tenant to a verified identity, or refuses it: an
// identity that names no tenant cannot be routed anywhere safe. The refusal
// rests on the verified identity, so it may be remembered.
func (r *tenantRule) resolve(id *identity.Identity) (*identity.Identity, error) {
	if r == nil {
		return id, nil
	}
	name, ok := id.Get(r.attribute)
	if !ok {
		return nil, refusedChecked(reasonNoTenant, "the identity has no %s to name its tenant", r.attribute)
	}
	if err := identity.ValidTenant(name); err != nil {
		return nil, refusedChecked(reasonNoTenant, "%v", err)
	}
	return id.With(identity.Attribute{Key: identity.Tenant, Value: name}), nil
}

// tenantOf reads the tenant the server side put in a request's context:
// from our own verdict while the request is being received (the tenant
// gate asks once per request, and Metadata.Get copies), from the metadata
// after a sending queue, which keeps only that.
func tenantOf(info client.Info) (string, bool) {
	if a, ok := info.Auth.(identity.AuthData); ok && a.Identity != nil {
		if tenant, ok := a.Identity.Get(identity.Tenant); ok {
			return tenant, true
		}
	}
	v := info.Metadata.Get(TenantMetadataKey)
	if len(v) != 1 || v[0] == "" {
		return "", false
	}
	return v[0], true
}

// withTenantMetadata is md with the tenant key set (and any value a sender
// could have put there replaced).
func withTenantMetadata(md client.Metadata, tenant string) client.Metadata {
	out := map[string][]string{}
	for k := range md.Keys() {
		out[k] = md.Get(k)
	}
	out[TenantMetadataKey] = []string{tenant}
	return client.NewMetadata(out)
}

// withAuth puts a verdict in a request's context: the identity in
// client.Info.Auth, and its tenant in client.Info.Metadata (replacing any
// value there).
func withAuth(ctx context.Context, v verdict) context.Context {
	info := client.FromContext(ctx)
	info.Auth = v.auth
	if v.tenant != "" {
		empty := true
		for range info.Metadata.Keys() {
			empty = false
			break
		}
		if empty {
			info.Metadata = v.metadata // built once per verified credential
		} else {
			info.Metadata = withTenantMetadata(info.Metadata, v.tenant)
		}
	}
	return client.NewContext(ctx, info)
}
