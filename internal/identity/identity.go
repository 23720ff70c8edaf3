// Package identity is the Vault identity of a workload as the vaultauth
// extension verifies it and the vaultidentity processor stamps it: a set of
// named attributes, how they travel in client.Info.Auth, and which keys are
// reserved for it.
package identity

import (
	"slices"
	"strings"
)

// Attribute names every identity carries, used both as client.Info.Auth keys
// (so contrib's `from_context: auth.vault.entity.id` works too) and as
// telemetry attributes.
const (
	EntityID   = "vault.entity.id"
	EntityName = "vault.entity.name"
	Namespace  = "vault.namespace"
	Policies   = "vault.policies"
	Groups     = "vault.entity.groups"
	// Tenant is the tenant a gateway routes the request's data to, when
	// the extension is configured with tenants.
	Tenant = "vault.tenant"
	// MetadataPrefix starts the attributes that hold entity metadata:
	// vault.entity.metadata.<key>.
	MetadataPrefix = "vault.entity.metadata."
	// CredentialHMAC is the Vault audit HMAC of the credential the
	// telemetry was sent with (sys/audit-hash): the key that finds, in
	// Vault's audit log, the request that issued it and every use of it.
	CredentialHMAC = "vault.credential.hmac"
	// VouchedByEntityID and VouchedByEntityName name the agent that
	// vouched for a resource's identity (its entity), stamped by a gateway
	// that keeps the identities its vouchers stamped.
	VouchedByEntityID   = "vault.vouched_by.entity.id"
	VouchedByEntityName = "vault.vouched_by.entity.name"
	// Subject is the entity id under the name other authenticators use.
	Subject = "subject"

	// Prefix is what every identity attribute starts with. Keys equal to
	// "vault" or starting with "vault.", in any letter case, are reserved:
	// only the vaultidentity processor writes them (see IsReserved).
	Prefix = "vault."
)

// RootNamespace is the namespace path of Vault's root namespace.
const RootNamespace = "root"

// Attribute is one named value of an identity.
type Attribute struct {
	Key   string
	Value string
}

// Identity is one verified Vault identity: the entity id, the namespace, and
// whatever other attributes the configured rules filled. It is immutable
// once built, so it is shared freely between requests and goroutines.
type Identity struct {
	attrs []Attribute // entity id, namespace, then the rest by key; keys unique, values non-empty
	names []string    // keys of attrs, then Subject (client.AuthData's names)
}

// New builds an identity. Attributes with an empty value are left out; a
// later duplicate of a key is ignored; extra keys that are not reserved
// (see IsReserved) are left out, so nothing a rule fills can escape the
// processor's scrub.
func New(entityID, namespace string, extra ...Attribute) *Identity {
	attrs := make([]Attribute, 0, 2+len(extra))
	attrs = append(attrs, Attribute{EntityID, entityID}, Attribute{Namespace, namespace})
	rest := make([]Attribute, 0, len(extra))
	for _, a := range extra {
		if a.Value == "" || !IsReserved(a.Key) || a.Key == EntityID || a.Key == Namespace ||
			slices.ContainsFunc(rest, func(b Attribute) bool { return b.Key == a.Key }) {
			continue
		}
		rest = append(rest, a)
	}
	slices.SortFunc(rest, func(a, b Attribute) int { return strings.Compare(a.Key, b.Key) })
	attrs = append(attrs, rest...)
	if namespace == "" {
		attrs = slices.Delete(attrs, 1, 2)
	}
	names := make([]string, 0, len(attrs)+1)
	for _, a := range attrs {
		names = append(names, a.Key)
	}
	return &Identity{attrs: attrs, names: append(names, Subject)}
}

// EntityID is the Vault entity id ("" for an identity without one).
func (id *Identity) EntityID() string { return id.attrs[0].Value }

// Get returns the value of an attribute, and whether the identity has it.
// Subject answers the entity id.
func (id *Identity) Get(key string) (string, bool) {
	if key == Subject {
		key = EntityID
	}
	for i := range id.attrs {
		if id.attrs[i].Key == key {
			return id.attrs[i].Value, id.attrs[i].Value != ""
		}
	}
	return "", false
}

// Attributes lists the attributes, entity id first. The slice is shared:
// callers must not modify it.
func (id *Identity) Attributes() []Attribute { return id.attrs }

// With returns the identity with a, added or replacing the value a.Key had.
func (id *Identity) With(a Attribute) *Identity {
	extra := make([]Attribute, 0, len(id.attrs))
	extra = append(extra, a)
	var ns string
	for _, b := range id.attrs[1:] {
		switch b.Key {
		case Namespace:
			ns = b.Value
		case a.Key:
		default:
			extra = append(extra, b)
		}
	}
	return New(id.EntityID(), ns, extra...)
}

// IsReserved says whether key belongs to the identity: "vault", or a key
// starting with "vault.", compared without regard to ASCII letter case
// (Unicode case folding maps no other character onto these five letters).
// It runs for every attribute of every item the processor sees: the first
// byte rules out almost every key.
func IsReserved(key string) bool {
	if len(key) < 5 || key[0]|0x20 != 'v' || (len(key) > 5 && key[5] != '.') {
		return false
	}
	return key[1]|0x20 == 'a' && key[2]|0x20 == 'u' && key[3]|0x20 == 'l' && key[4]|0x20 == 't'
}
