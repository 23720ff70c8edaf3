package vaultauthextension

import "github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/server"

// What senders are told, and why, as the tests name them.
var (
	errUnauthenticated     = server.ErrUnauthenticated
	errVerifierUnavailable = server.ErrUnavailable
)

const (
	reasonNoCredential  = server.ReasonNoCredential
	reasonMultiple      = server.ReasonMultiple
	reasonOversized     = server.ReasonOversized
	reasonMalformed     = server.ReasonMalformed
	reasonUnknownIssuer = server.ReasonUnknownIssuer
	reasonAlgorithm     = server.ReasonAlgorithm
	reasonBadSignature  = server.ReasonBadSignature
	reasonInvalidClaims = server.ReasonInvalidClaims
	reasonNoTenant      = server.ReasonNoTenant
	reasonCachedRefusal = server.ReasonCachedRefusal
)
