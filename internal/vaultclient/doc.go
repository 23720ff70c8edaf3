// Package vaultclient is the vaultauth extension's Vault plumbing: the
// client configuration (with Vault's VAULT_* environment), logging in with
// each auth method and keeping the token alive (Session), this collector's
// own identity, entity reads, watching a secret for new values
// (SecretWatcher), and the retry and state-change logging they share. The
// small interfaces in vault.go are the seam between the components and
// Vault. (The vaultidentity processor needs none of it: it reads identities
// through internal/identity.)
package vaultclient
