// Package vaultauthextension is the vaultauth extension: an authenticator
// backed by HashiCorp Vault. An instance does one job, chosen by its config:
//
//   - client (internal/source): logs in to Vault, reads a credential (a
//     Lightstep access token kept in KV v2, one per tenant, or this
//     collector's identity token) and puts it on OTLP gRPC and HTTP
//     exports, keeping it current across renewals and rotations; with
//     tenants, a tenant whose exports cannot be sent has them parked, so it
//     never holds up the others;
//   - server (internal/server): verifies each sender's Vault identity (an
//     identity JWT against the issuer's keys, or a Vault token by lookup)
//     into client.Info.Auth;
//   - neither: this collector's own identity, for the vaultidentity
//     processor.
//
// Any instance also guards the receivers that list it in their middlewares
// (internal/guard). This package holds the config, the factory, and the
// types that wire each job to the Collector.
package vaultauthextension // import "github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
