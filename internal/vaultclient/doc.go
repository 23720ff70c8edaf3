// Package vaultclient is the Vault plumbing shared by the vaultauth extension
// and the vaultidentity processor: the client configuration, logging in with
// each auth method and keeping the token alive (Session), watching a secret
// for new values (SecretWatcher), and the retry and state-change logging they
// share. It is written once here so both components behave the same.
package vaultclient
