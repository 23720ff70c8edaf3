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

// withAuth puts a verdict in a request's context: the identity in
// client.Info.Auth, and its tenant in client.Info.Metadata (replacing any
// value there). The credential itself leaves the metadata: with the
// receiver's include_metadata it would otherwise travel on with the data,
// into a persistent queue on disk and through any exporter that forwards
// metadata, as a replayable credential. credentialKey is the header it came
// in, lower-cased as client.Metadata keys are.
func withAuth(ctx context.Context, v verdict, credentialKey string) context.Context {
	info := client.FromContext(ctx)
	info.Auth = v.auth
	info.Metadata = verifiedMetadata(info.Metadata, v, credentialKey)
	return client.NewContext(ctx, info)
}

// verifiedMetadata is md without the credential, with the verdict's tenant.
// The common cases copy nothing: no metadata at all (the receiver's
// default), or metadata without the credential and no tenant to set.
func verifiedMetadata(md client.Metadata, v verdict, credentialKey string) client.Metadata {
	empty := true
	for range md.Keys() {
		empty = false
		break
	}
	switch {
	case empty && v.tenant != "":
		return v.metadata // built once per verified credential
	case empty, v.tenant == "" && md.Get(credentialKey) == nil:
		return md
	}
	out := map[string][]string{}
	for k := range md.Keys() {
		if k != credentialKey {
			out[k] = md.Get(k)
		}
	}
	if v.tenant != "" {
		out[TenantMetadataKey] = []string{v.tenant}
	}
	return client.NewMetadata(out)
}
