package vaultauthextension

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// asymmetricAlgorithms are the only signatures accepted: no "none", and no
// HMAC, so a token "signed" with a public key as an HMAC secret is refused.
var asymmetricAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

var (
	errKeysUnavailable = errors.New("issuer keys unavailable")
	errUnknownKey      = errors.New("signing key not in the issuer's key set")
)

// jwtVerifier verifies Vault identity tokens locally: signature against the
// issuer's JWKS, iss, aud, exp, nbf and iat. It calls Vault only to fetch keys.
type jwtVerifier struct {
	cfg     IdentityTokenServerConfig
	issuers map[string]issuer
}

type issuer struct {
	keys      *jwks
	namespace string // from the issuer URL: .../v1/<namespace>/identity/oidc
}

func newJWTVerifier(cfg IdentityTokenServerConfig, vaultAddr string, httpClient *http.Client) *jwtVerifier {
	issuers := cfg.Issuers
	if len(issuers) == 0 {
		issuers = []string{strings.TrimRight(vaultAddr, "/") + "/v1/identity/oidc"}
	}
	v := &jwtVerifier{cfg: cfg, issuers: make(map[string]issuer, len(issuers))}
	for _, iss := range issuers {
		iss = strings.TrimRight(iss, "/")
		v.issuers[iss] = issuer{keys: newJWKS(iss, httpClient, cfg.JWKSRefetchInterval), namespace: namespaceOfIssuer(iss)}
	}
	return v
}

// prefetch loads every issuer's keys once at start, so the first requests
// need not wait; failures are retried on demand.
func (v *jwtVerifier) prefetch(ctx context.Context) {
	for _, iss := range v.issuers {
		_, _ = iss.keys.key(ctx, "\x00prefetch")
	}
}

// vaultClaims are the claims Vault puts in identity tokens beyond the
// registered ones; the entity name comes from the role's template.
type vaultClaims map[string]any

func (v *jwtVerifier) verify(ctx context.Context, raw string) (*identity.Identity, time.Time, error) {
	tok, err := jwt.ParseSigned(raw, asymmetricAlgorithms)
	if err != nil {
		return nil, time.Time{}, rejected("not a signed JWT with an asymmetric algorithm: %v", err)
	}
	if len(tok.Headers) != 1 {
		return nil, time.Time{}, rejected("want one signature, got %d", len(tok.Headers))
	}
	// The issuer picks the key set; it is checked again after verification.
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, time.Time{}, rejected("claims: %v", err)
	}
	iss, ok := v.issuers[unverified.Issuer]
	if !ok {
		return nil, time.Time{}, rejected("issuer %q not accepted", unverified.Issuer)
	}
	key, err := iss.keys.key(ctx, tok.Headers[0].KeyID)
	if errors.Is(err, errKeysUnavailable) {
		return nil, time.Time{}, unavailable(err)
	}
	if err != nil {
		return nil, time.Time{}, rejected("%v (kid %q)", err, tok.Headers[0].KeyID)
	}
	var claims jwt.Claims
	extra := vaultClaims{}
	if err := tok.Claims(key.Key, &claims, &extra); err != nil {
		return nil, time.Time{}, rejected("signature: %v", err)
	}
	if claims.Expiry == nil {
		return nil, time.Time{}, rejected("no exp claim")
	}
	err = claims.ValidateWithLeeway(jwt.Expected{
		Issuer:      unverified.Issuer,
		AnyAudience: jwt.Audience{v.cfg.Audience},
		Time:        time.Now(),
	}, v.cfg.Leeway)
	if err != nil {
		return nil, time.Time{}, rejected("claims: %v", err)
	}
	if claims.Subject == "" {
		return nil, time.Time{}, rejected("no sub (entity id)")
	}
	name, _ := extra[v.cfg.EntityNameClaim].(string)
	id := &identity.Identity{EntityID: claims.Subject, EntityName: name, Namespace: iss.namespace}
	return id, claims.Expiry.Time(), nil
}

// namespaceOfIssuer reads the namespace path from a Vault issuer URL:
// <addr>/v1/identity/oidc is the root namespace, <addr>/v1/a/b/identity/oidc is "a/b".
func namespaceOfIssuer(iss string) string {
	u, err := url.Parse(iss)
	if err != nil {
		return identity.RootNamespace
	}
	p := strings.TrimSuffix(strings.Trim(u.Path, "/"), "identity/oidc")
	if i := strings.Index(p, "v1/"); i >= 0 {
		p = p[i+len("v1/"):]
	}
	return vaultclient.NamespaceFromPath(p)
}

// verdictError says why a credential was not accepted. It is logged at
// debug level and never returned to the sender.
type verdictError struct {
	reason    string
	temporary bool // Vault or keys unreachable: not the sender's fault, not cached
}

func (e *verdictError) Error() string { return e.reason }

func rejected(format string, args ...any) error {
	return &verdictError{reason: fmt.Sprintf(format, args...)}
}

func unavailable(err error) error {
	return &verdictError{reason: err.Error(), temporary: true}
}
