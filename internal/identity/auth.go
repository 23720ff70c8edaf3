package identity

import (
	"context"
	"strings"

	"go.opentelemetry.io/collector/client"
)

// AuthData carries an Identity in client.Info.Auth.
type AuthData struct{ Identity *Identity }

var _ client.AuthData = AuthData{}

// GetAttribute returns the value of name as a string, or nil when the
// identity does not have it.
func (a AuthData) GetAttribute(name string) any {
	if v, ok := a.Identity.Get(name); ok {
		return v
	}
	return nil
}

// GetAttributeNames lists the names GetAttribute answers.
func (a AuthData) GetAttributeNames() []string { return a.Identity.names }

// FromAuth returns the identity in an auth context: ours directly, or, for
// another authenticator's auth data, the named attributes read through
// GetAttribute (strings, or lists of strings joined with ",").
func FromAuth(auth client.AuthData, names []string) (*Identity, bool) {
	switch a := auth.(type) {
	case nil:
		return nil, false
	case AuthData:
		return a.Identity, a.Identity != nil && a.Identity.EntityID() != ""
	}
	entityID := stringOf(auth.GetAttribute(EntityID))
	if entityID == "" {
		return nil, false
	}
	extra := make([]Attribute, 0, len(names))
	for _, n := range names {
		extra = append(extra, Attribute{n, stringOf(auth.GetAttribute(n))})
	}
	return New(entityID, stringOf(auth.GetAttribute(Namespace)), extra...), true
}

func stringOf(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []string:
		return strings.Join(s, ",")
	}
	return ""
}

// Provider is implemented by the vaultauth extension: the collector's own
// Vault identity, for agents and sidecars (vaultidentity `from: extension`).
type Provider interface {
	// RequireAttributes says which attributes a consumer will read, so the
	// provider resolves them (an entity read, say) only when someone needs
	// them. Called at the consumer's Start; an error names what cannot be
	// provided.
	RequireAttributes(names []string) error
	// VaultIdentity returns the identity of the current login, or false
	// before the first login has completed. It does no I/O.
	VaultIdentity() (*Identity, bool)
}

// CredentialGate is implemented by the vaultauth client: whether the
// credential an export of ctx's data would carry (its tenant's, with
// tenants) is ready now. It does no I/O; a tenant seen for the first time
// starts being watched. vaultidentity asks it at the gateway's door, so a
// tenant without a token waits at its sender instead of in the gateway's
// queue, where retrying its exports would hold up every other tenant's.
type CredentialGate interface {
	CredentialReady(ctx context.Context) error
}
