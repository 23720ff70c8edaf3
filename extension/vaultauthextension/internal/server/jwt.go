package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"

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

// jwtVerifier verifies Vault identity tokens locally: signature against the
// issuer's JWKS, iss, aud, exp, nbf and iat. It calls Vault only to fetch keys.
type jwtVerifier struct {
	cfg      JWTSettings
	rules    identity.Rules
	tenant   *tenantRule
	verdicts *verdicts
	audit    *auditHasher // nil without server.audit
	issuers  map[string]issuer
}

type issuer struct {
	keys      *jwks
	namespace string // from the issuer URL: .../v1/<namespace>/identity/oidc
}

func newJWTVerifier(cfg JWTSettings, rules identity.Rules, tenant *tenantRule, v *verdicts, audit *auditHasher, vault vaultclient.VaultConfig, httpClient *http.Client, logger *zap.Logger) *jwtVerifier {
	issuers := cfg.Issuers
	if len(issuers) == 0 {
		issuers = []string{defaultIssuer(vault)}
	} else if ns := strings.Trim(vault.ResolvedNamespace(), "/"); ns != "" && !anyInNamespace(issuers, ns) {
		logger.Warn("vault.namespace is set but no issuer is in it: identity tokens of that namespace will be refused (unknown_issuer)",
			zap.String("namespace", ns), zap.Strings("issuers", issuers), zap.String("its_issuer", defaultIssuer(vault)))
	}
	j := &jwtVerifier{cfg: cfg, rules: rules, tenant: tenant, verdicts: v, audit: audit, issuers: make(map[string]issuer, len(issuers))}
	for _, iss := range issuers {
		iss = strings.TrimRight(iss, "/")
		j.issuers[iss] = issuer{
			keys:      newJWKS(iss, httpClient, cfg, vault.Timeout, vault.Retry, logger),
			namespace: namespaceOfIssuer(iss),
		}
	}
	return j
}

// defaultIssuer is the identity token issuer of Vault's identity engine in
// vault.namespace (HCP Vault Dedicated: admin), or in the root namespace.
func defaultIssuer(vault vaultclient.VaultConfig) string {
	base := strings.TrimRight(vault.ResolvedAddress(), "/") + "/v1/"
	if ns := strings.Trim(vault.ResolvedNamespace(), "/"); ns != "" {
		base += ns + "/"
	}
	return base + "identity/oidc"
}

func anyInNamespace(issuers []string, ns string) bool {
	for _, iss := range issuers {
		if namespaceOfIssuer(strings.TrimRight(iss, "/")) == ns {
			return true
		}
	}
	return false
}

// each runs f for each issuer's key set (to start their fetchers).
func (j *jwtVerifier) each(f func(*jwks)) {
	for _, iss := range j.issuers {
		f(iss.keys)
	}
}

func (j *jwtVerifier) verify(ctx context.Context, raw string, key Key, _ string) (verdict, error) {
	id, about, err := j.check(ctx, raw)
	if err == nil {
		id, err = j.tenant.resolve(id)
	}
	cacheUntil := about.expires
	if err == nil {
		id, cacheUntil, err = j.audit.stamp(ctx, key, raw, id, about.expires)
	}
	if err != nil {
		if ve := verdictOf(err); ve.checked {
			j.verdicts.refuse(key)
		}
		return verdict{}, err
	}
	return j.verdicts.accept(key, id, cacheUntil, about), nil
}

func (j *jwtVerifier) check(ctx context.Context, raw string) (*identity.Identity, *acceptance, error) {
	tok, err := jwt.ParseSigned(raw, asymmetricAlgorithms)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected signature algorithm") {
			return nil, &acceptance{}, refused(ReasonAlgorithm, "not an asymmetric algorithm: %v", err)
		}
		return nil, &acceptance{}, refused(ReasonMalformed, "not a signed JWT: %v", err)
	}
	if len(tok.Headers) != 1 {
		return nil, &acceptance{}, refused(ReasonMalformed, "want one signature, got %d", len(tok.Headers))
	}
	header := tok.Headers[0]
	// The issuer picks the key set; it is checked again after verification.
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, &acceptance{}, refused(ReasonMalformed, "claims: %v", err)
	}
	iss, ok := j.issuers[unverified.Issuer]
	if !ok {
		return nil, &acceptance{}, refused(ReasonUnknownIssuer, "issuer %q not accepted", unverified.Issuer)
	}
	jwk, err := iss.keys.key(ctx, header.KeyID)
	switch {
	case errors.Is(err, errKeysUnavailable):
		return nil, &acceptance{}, unavailable(ReasonKeysUnavail, err)
	case err != nil:
		return nil, &acceptance{}, refused(ReasonUnknownKey, "%v (kid %q)", err, header.KeyID)
	}
	// A key is used only as its JWK declares: with its algorithm, for signatures.
	if jwk.Algorithm != "" && jwk.Algorithm != header.Algorithm {
		return nil, &acceptance{}, refused(ReasonAlgorithm, "token alg %s, key %q declares %s", header.Algorithm, header.KeyID, jwk.Algorithm)
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, &acceptance{}, refused(ReasonAlgorithm, "key %q is for %q, not signatures", header.KeyID, jwk.Use)
	}
	var claims jwt.Claims
	extra := map[string]any{}
	if err := tok.Claims(jwk.Key, &claims, &extra); err != nil {
		return nil, &acceptance{}, refusedChecked(ReasonBadSignature, "signature: %v", err)
	}
	if claims.Expiry == nil {
		return nil, &acceptance{}, refusedChecked(ReasonInvalidClaims, "no exp claim")
	}
	err = claims.ValidateWithLeeway(jwt.Expected{
		Issuer:      unverified.Issuer,
		AnyAudience: jwt.Audience{j.cfg.Audience},
		Time:        time.Now(),
	}, j.cfg.Leeway)
	if err != nil {
		return nil, &acceptance{}, refusedChecked(ReasonInvalidClaims, "claims: %v", err)
	}
	if claims.Subject == "" {
		return nil, &acceptance{}, refusedChecked(ReasonNoEntity, "no sub (entity id)")
	}
	id := identity.New(claims.Subject, iss.namespace, j.rules.Apply(identity.Facts{Claims: extra})...)
	return id, &acceptance{kind: KindIdentityToken, expires: claims.Expiry.Time(), issuer: unverified.Issuer, keyID: header.KeyID}, nil
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
