package vaultclient

import (
	"context"

	"github.com/hashicorp/vault/api"
)

// The seam between the components and Vault: the few calls they make, as
// small interfaces. A Session implements them against a real server; unit
// tests of caching, routing and status fake them, while the integration
// tests keep the real server.

// Logical reads and writes Vault paths (*api.Logical implements it).
type Logical interface {
	ReadWithContext(ctx context.Context, path string) (*api.Secret, error)
	WriteWithContext(ctx context.Context, path string, data map[string]any) (*api.Secret, error)
}

// LoginState is the state of a login that requests depend on.
type LoginState interface {
	// LoggedIn is closed once the first login has succeeded.
	LoggedIn() <-chan struct{}
	// RequestLogin asks for a new login soon (a request saw 403).
	RequestLogin()
}

// Vault is a logged-in connection: what the secret watcher and the token
// verifier need.
type Vault interface {
	Logical
	LoginState
}
