// Package identity is the Vault identity of a workload as the vaultauth
// extension verifies it and the vaultidentity processor stamps it: the
// attribute names, the value, and how it travels in client.Info.Auth.
package identity

import "go.opentelemetry.io/collector/client"

// Attribute names, used both as client.Info.Auth keys (so contrib's
// `from_context: auth.vault.entity.id` works too) and as telemetry attributes.
const (
	EntityID   = "vault.entity.id"
	EntityName = "vault.entity.name"
	Namespace  = "vault.namespace"
	Policies   = "vault.policies"
	Subject    = "subject" // = entity id, the name other authenticators use

	// Prefix is what every attribute of ours starts with; the processor
	// removes sender-written attributes with it.
	Prefix = "vault."
)

// RootNamespace is the namespace path of Vault's root namespace.
const RootNamespace = "root"

// Identity is one verified Vault identity. Values are plain strings (lists
// joined with ","), as the Collector's auth-context consumers expect.
type Identity struct {
	EntityID   string
	EntityName string
	Namespace  string // namespace path; "root" for the root namespace
	Policies   string // comma-separated; token lookup mode only
}

// Get returns the value of an attribute name ("" when unknown or empty).
func (id *Identity) Get(name string) string {
	switch name {
	case EntityID, Subject:
		return id.EntityID
	case EntityName:
		return id.EntityName
	case Namespace:
		return id.Namespace
	case Policies:
		return id.Policies
	}
	return ""
}

// AuthData carries an Identity in client.Info.Auth.
type AuthData struct{ Identity *Identity }

var _ client.AuthData = AuthData{}

var attributeNames = []string{EntityID, EntityName, Namespace, Policies, Subject}

// GetAttribute returns the value of name as a string, or nil when it is unknown or empty.
func (a AuthData) GetAttribute(name string) any {
	if v := a.Identity.Get(name); v != "" {
		return v
	}
	return nil
}

// GetAttributeNames lists the names GetAttribute answers.
func (a AuthData) GetAttributeNames() []string { return attributeNames }

// FromAuth returns the identity in an auth context: ours directly, or one
// another authenticator put there, read through its string attributes.
func FromAuth(auth client.AuthData) (*Identity, bool) {
	switch a := auth.(type) {
	case nil:
		return nil, false
	case AuthData:
		return a.Identity, a.Identity != nil
	}
	str := func(name string) string { s, _ := auth.GetAttribute(name).(string); return s }
	id := &Identity{EntityID: str(EntityID), EntityName: str(EntityName), Namespace: str(Namespace), Policies: str(Policies)}
	return id, id.EntityID != ""
}

// Provider is implemented by the vaultauth extension: the collector's own
// Vault identity, for agents and sidecars (vaultidentity `from: extension`).
type Provider interface {
	// VaultIdentity returns the identity of the current login, or false
	// before the first login has completed. It does no I/O.
	VaultIdentity() (*Identity, bool)
}
