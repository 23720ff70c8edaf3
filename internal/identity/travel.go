package identity

import "go.opentelemetry.io/collector/client"

// How an identity's tenant travels from the receiver to the exporter: in
// the request's client metadata, through batching partitioned by this key
// and through the persistent queue, which keep only the metadata.

// TenantMetadataKey is the client metadata key that carries a request's
// tenant. No sender can send it: ':' is not allowed in an HTTP header or
// gRPC metadata name, so only the vaultauth server side sets it.
const TenantMetadataKey = "vault:tenant"

// TenantOf reads the tenant the server side put in a request's context: from
// the verified identity while the request is being received (the door asks
// once per request, and Metadata.Get copies), from the metadata after a
// sending queue, which keeps only that.
func TenantOf(info client.Info) (string, bool) {
	if a, ok := info.Auth.(AuthData); ok && a.Identity != nil {
		if tenant, ok := a.Identity.Get(Tenant); ok {
			return tenant, true
		}
	}
	v := info.Metadata.Get(TenantMetadataKey)
	if len(v) != 1 || v[0] == "" {
		return "", false
	}
	return v[0], true
}

// TenantMetadata is the metadata of a request that holds only tenant.
func TenantMetadata(tenant string) client.Metadata {
	return client.NewMetadata(map[string][]string{TenantMetadataKey: {tenant}})
}

// VerifiedMetadata is a received request's metadata once its sender is
// verified: without the credential (credentialKey, lower-cased as
// client.Metadata keys are), which would otherwise travel on with the data
// into a persistent queue on disk, and with the tenant (replacing anything
// a sender put there). tenantOnly is TenantMetadata(tenant), built once per
// verified credential. The common cases copy nothing: no metadata at all
// (the receiver's default), or metadata without the credential and no
// tenant to set.
func VerifiedMetadata(md client.Metadata, tenant string, tenantOnly client.Metadata, credentialKey string) client.Metadata {
	empty := true
	for range md.Keys() {
		empty = false
		break
	}
	switch {
	case empty && tenant != "":
		return tenantOnly
	case empty, tenant == "" && md.Get(credentialKey) == nil:
		return md
	}
	out := map[string][]string{}
	for k := range md.Keys() {
		if k != credentialKey {
			out[k] = md.Get(k)
		}
	}
	if tenant != "" {
		out[TenantMetadataKey] = []string{tenant}
	}
	return client.NewMetadata(out)
}
