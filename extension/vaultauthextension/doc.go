// Package vaultauthextension is the vaultauth extension: an authenticator
// backed by HashiCorp Vault.
//
// Client side, it logs in to Vault, reads a credential (a Lightstep access
// token kept in KV v2, or any secret) and injects it into OTLP gRPC and HTTP
// exporters, keeping it current across token renewals and secret rotations
// without dropping an export.
package vaultauthextension // import "github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
