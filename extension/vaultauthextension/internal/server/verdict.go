// Package server verifies senders' Vault identities for the vaultauth
// extension's server side: the credential of each request, checked as an
// identity JWT against the issuer's keys or as a Vault token by lookup,
// cached, and turned into the identity (and tenant) put in client.Info.
package server // import "github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/server"

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// What a sender is told. Receivers copy an authenticator's error into the
// response, so these say nothing that helps an attacker; the reason is
// logged and counted.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrUnavailable is not the sender's fault (Vault or its keys
	// unreachable, a rate limit): gRPC senders retry Unavailable instead of
	// dropping their data.
	ErrUnavailable = status.Error(codes.Unavailable, "authentication temporarily unavailable")
)

// Why a request was not accepted: a bounded set, used as a metric attribute.
const (
	ReasonNoCredential   = "no_credential"
	ReasonMultiple       = "multiple_credentials"
	ReasonOversized      = "oversized"
	ReasonMalformed      = "malformed"
	ReasonUnknownIssuer  = "unknown_issuer"
	ReasonUnknownKey     = "unknown_key"
	ReasonAlgorithm      = "algorithm"
	ReasonBadSignature   = "bad_signature"
	ReasonInvalidClaims  = "invalid_claims"
	ReasonNoEntity       = "no_entity"
	ReasonUnknownToken   = "unknown_token"
	ReasonNoTenant       = "no_tenant"
	ReasonCachedRefusal  = "cached_refusal"
	ReasonKeysUnavail    = "keys_unavailable"
	ReasonVaultUnavail   = "vault_unavailable"
	ReasonRateLimited    = "rate_limited"
	ReasonNotLoggedIn    = "not_logged_in"
	ReasonRequestExpired = "request_deadline"
	// ReasonAuditUnavail: verified, but Vault could not hash the
	// credential for vault.credential.hmac (server.audit.on_failure).
	ReasonAuditUnavail = "audit_hash_unavailable"
)

// verdictError says why a credential was not accepted. It is logged
// without the credential and never returned to the sender.
type verdictError struct {
	reason string // one of the reason constants
	detail string
	// temporary: Vault or keys unreachable, or a budget spent: not the
	// sender's fault; never cached.
	temporary bool
	// checked: the refusal rests on a check of the credential itself
	// (its signature, its claims, Vault's answer about it), so it holds
	// for the same credential later and may be remembered.
	checked bool
}

func (e *verdictError) Error() string { return e.reason + ": " + e.detail }

// refused is a refusal made before the credential could be checked (its
// shape, its issuer, its key id): not remembered, since nothing about the
// credential itself was proven wrong.
func refused(reason, format string, args ...any) error {
	return &verdictError{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// refusedChecked is a refusal that rests on a check of the credential.
func refusedChecked(reason, format string, args ...any) error {
	return &verdictError{reason: reason, detail: fmt.Sprintf(format, args...), checked: true}
}

func unavailable(reason string, err error) error {
	return &verdictError{reason: reason, detail: err.Error(), temporary: true}
}

// verdictOf reads a verification error (a plain error is a refusal).
func verdictOf(err error) *verdictError {
	var ve *verdictError
	if errors.As(err, &ve) {
		return ve
	}
	return &verdictError{reason: ReasonMalformed, detail: err.Error()}
}
