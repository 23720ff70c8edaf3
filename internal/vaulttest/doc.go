// Package vaulttest starts a real HashiCorp Vault dev server (v1.14.1, built
// by `make vault`) on a loopback port for integration tests, and offers the
// few set-up helpers the tests share: KV v2 writes, policies, AppRole,
// userpass users with entities, identity OIDC keys and roles.
//
// Nothing here is a mock: every helper talks to the running server through
// github.com/hashicorp/vault/api.
package vaulttest
