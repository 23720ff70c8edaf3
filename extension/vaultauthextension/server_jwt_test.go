package vaultauthextension

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

const agentRole = "otel-agent"

// identityEnv is a Vault with an OIDC key and role whose tokens name the
// entity, and two userpass workloads allowed to get such tokens.
type identityEnv struct {
	v          *vaulttest.Server
	audience   string
	alice, bob vaulttest.Workload
	entityTmpl string
}

func newIdentityEnv(t *testing.T) *identityEnv {
	t.Helper()
	v := vaulttest.Start(t)
	e := &identityEnv{v: v, entityTmpl: `{"entity_name": {{identity.entity.name}}}`}
	e.audience = v.OIDCRole(t, "otel", agentRole, e.entityTmpl, "1h")
	v.PutPolicy(t, "otel-agent", `path "identity/oidc/token/*" { capabilities = ["read"] }`)
	e.alice = v.UserpassWorkload(t, "alice", "otel-agent")
	e.bob = v.UserpassWorkload(t, "bob", "otel-agent")
	return e
}

// jwtServerConfig is a gateway in identity_token mode for this Vault.
func (e *identityEnv) jwtServerConfig() *Config {
	cfg := createDefaultConfig()
	cfg.Vault.Address = e.v.Addr
	srv := cfg.Server.GetOrInsertDefault()
	srv.IdentityToken.GetOrInsertDefault().Audience = e.audience
	return cfg
}

func authenticate(h *harness, values ...string) (*identity.Identity, error) {
	sources := map[string][]string{}
	if len(values) > 0 {
		sources["authorization"] = values
	}
	ctx, err := h.ext.Authenticate(context.Background(), sources)
	if err != nil {
		return nil, err
	}
	info := clientInfo(ctx)
	id, ok := identity.FromAuth(info.Auth)
	if !ok {
		return nil, errors.New("authenticated without an identity")
	}
	return id, nil
}

func TestIdentityTokenAccepted(t *testing.T) {
	e := newIdentityEnv(t)
	h := start(t, e.jwtServerConfig())
	for _, w := range []vaulttest.Workload{e.alice, e.bob} {
		id, err := authenticate(h, "Bearer "+e.v.IdentityToken(t, w.Token, agentRole))
		require.NoError(t, err, w.Name)
		assert.Equal(t, identity.Identity{EntityID: w.EntityID, EntityName: w.Name, Namespace: "root"}, *id)
	}
	// gRPC metadata keys are lower-case, HTTP header keys canonical: both work.
	jwt := e.v.IdentityToken(t, e.alice.Token, agentRole)
	ctx, err := h.ext.Authenticate(context.Background(), map[string][]string{"Authorization": {"Bearer " + jwt}})
	require.NoError(t, err)
	assert.Equal(t, e.alice.EntityID, clientInfo(ctx).Auth.GetAttribute(identity.EntityID))
	assert.Equal(t, e.alice.EntityID, clientInfo(ctx).Auth.GetAttribute(identity.Subject))
	assert.Equal(t, "root", clientInfo(ctx).Auth.GetAttribute(identity.Namespace))
}

func TestIdentityTokenRejected(t *testing.T) {
	e := newIdentityEnv(t)
	h := start(t, e.jwtServerConfig())
	valid := e.v.IdentityToken(t, e.alice.Token, agentRole)
	header, payload, _ := strings.Cut(valid, ".")
	payload, _, _ = strings.Cut(payload, ".")

	otherAud := e.v.OIDCRole(t, "otel", "other-audience", e.entityTmpl, "1h")
	require.NotEqual(t, e.audience, otherAud)
	wrongAudience := e.v.IdentityToken(t, e.alice.Token, "other-audience")

	var claims map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &claims))
	var hdr map[string]any
	raw, _ = base64.RawURLEncoding.DecodeString(header)
	require.NoError(t, json.Unmarshal(raw, &hdr))

	// Same claims, another key with an id Vault never used.
	foreign := vaulttest.NewSigner(t).Sign(t, claims)
	// Same claims, the kid of Vault's key, "signed" with alg none.
	none := vaulttest.EncodeSegment(t, map[string]any{"alg": "none", "kid": hdr["kid"], "typ": "JWT"}) + "." + payload + "."
	// HS256 keyed with Vault's public key: the classic algorithm confusion.
	hmacWithPublicKey := hmacSigned(t, hdr["kid"].(string), payload, vaultPublicKeyPEM(t, e.v, hdr["kid"].(string)))
	// A valid signature over a different payload.
	claims["sub"] = e.bob.EntityID
	tampered := header + "." + vaulttest.EncodeSegment(t, claims) + "." + strings.Split(valid, ".")[2]

	cases := []struct {
		name   string
		values []string
		reason string // in the debug log, never in the response
	}{
		{"no header", nil, "no credential header"},
		{"two credentials", []string{"Bearer " + valid, "Bearer " + valid}, "more than one credential"},
		{"Bearer with nothing", []string{"Bearer "}, "empty credential"},
		{"garbage", []string{"Bearer not.a.jwt"}, "not a signed JWT"},
		{"wrong audience", []string{"Bearer " + wrongAudience}, "invalid audience"},
		{"alg none", []string{"Bearer " + none}, `algorithm "none"`},
		{"HMAC with the public key", []string{"Bearer " + hmacWithPublicKey}, `algorithm "HS256"`},
		{"key not in the JWKS", []string{"Bearer " + foreign}, "signing key not in the issuer's key set"},
		{"tampered payload", []string{"Bearer " + tampered}, "signature"},
		{"oversized", []string{"Bearer " + strings.Repeat("a", 1<<20)}, "larger than max_credential_size"},
		{"not UTF-8", []string{"Bearer \xff\xfe\xfd"}, "not a signed JWT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := authenticate(h, tc.values...)
			require.ErrorIs(t, err, errUnauthenticated)
			assert.Equal(t, "unauthenticated", err.Error(), "the sender must not learn why")
			all := h.logs.All()
			last := all[len(all)-1]
			assert.Contains(t, last.Message+fmt.Sprint(last.ContextMap()), tc.reason)
		})
	}
	// The valid token still passes after all that.
	_, err = authenticate(h, "Bearer "+valid)
	require.NoError(t, err)
}

func TestIdentityTokenWrongIssuer(t *testing.T) {
	e := newIdentityEnv(t)
	cfg := e.jwtServerConfig()
	cfg.Server.Get().IdentityToken.Get().Issuers = []string{"https://vault.other.example/v1/identity/oidc"}
	h := start(t, cfg)
	_, err := authenticate(h, "Bearer "+e.v.IdentityToken(t, e.alice.Token, agentRole))
	require.ErrorIs(t, err, errUnauthenticated)
}

// A verified token is cached, but never past its exp.
func TestIdentityTokenExpires(t *testing.T) {
	e := newIdentityEnv(t)
	e.v.OIDCRole(t, "otel", "short-lived", e.entityTmpl, "2s")
	cfg := e.jwtServerConfig()
	cfg.Server.Get().IdentityToken.Get().Leeway = 0
	// short-lived has its own client_id: accept it as the audience here.
	cfg.Server.Get().IdentityToken.Get().Audience = e.v.Read(t, "identity/oidc/role/short-lived").Data["client_id"].(string)
	h := start(t, cfg)
	jwt := e.v.IdentityToken(t, e.alice.Token, "short-lived")
	_, err := authenticate(h, "Bearer "+jwt)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := authenticate(h, "Bearer "+jwt)
		return errors.Is(err, errUnauthenticated)
	}, eventually, poll)
}

// Rotating Vault's key twice (the second time to a key the gateway has never
// seen in the JWKS) does not stop new tokens from verifying.
func TestIdentityTokenKeyRotation(t *testing.T) {
	e := newIdentityEnv(t)
	cfg := e.jwtServerConfig()
	cfg.Server.Get().IdentityToken.Get().JWKSRefetchInterval = time.Millisecond
	h := start(t, cfg)
	before := e.v.IdentityToken(t, e.alice.Token, agentRole)
	_, err := authenticate(h, "Bearer "+before)
	require.NoError(t, err)

	kids := map[string]bool{kidOf(t, before): true}
	for range 2 {
		e.v.Write(t, "identity/oidc/key/otel/rotate", nil)
		after := e.v.IdentityToken(t, e.alice.Token, agentRole)
		require.False(t, kids[kidOf(t, after)], "rotation did not change the signing key")
		kids[kidOf(t, after)] = true
		_, err := authenticate(h, "Bearer "+after)
		require.NoError(t, err)
	}
	// Tokens signed before the rotations still verify (Vault keeps publishing the old key).
	_, err = authenticate(h, "Bearer "+before)
	require.NoError(t, err)
}

// Garbage repeated is verified once and then answered from the negative cache.
func TestNegativeCache(t *testing.T) {
	e := newIdentityEnv(t)
	h := start(t, e.jwtServerConfig())
	for range 100 {
		_, err := authenticate(h, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
		require.ErrorIs(t, err, errUnauthenticated)
	}
	assert.Equal(t, 1, h.logs.FilterMessage("rejected a credential").Len())
	// Concurrent first sight of one valid token: all accepted.
	jwt := e.v.IdentityToken(t, e.bob.Token, agentRole)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := authenticate(h, "Bearer "+jwt); errs <- err }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	header, _, _ := strings.Cut(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	require.NoError(t, err)
	var h struct{ Kid string }
	require.NoError(t, json.Unmarshal(raw, &h))
	return h.Kid
}

// vaultPublicKeyPEM fetches Vault's JWKS and returns key kid as PEM.
func vaultPublicKeyPEM(t *testing.T, v *vaulttest.Server, kid string) []byte {
	t.Helper()
	resp, err := http.Get(v.Addr + "/v1/identity/oidc/.well-known/keys")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var set jose.JSONWebKeySet
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	keys := set.Key(kid)
	require.NotEmpty(t, keys)
	der, err := x509.MarshalPKIXPublicKey(keys[0].Key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func hmacSigned(t *testing.T, kid, payload string, key []byte) string {
	t.Helper()
	input := vaulttest.EncodeSegment(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"}) + "." + payload
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Thousands of other headers change nothing: the credential header is found
// by key, garbage in it is refused, a valid token accepted.
func TestManyHeaders(t *testing.T) {
	e := newIdentityEnv(t)
	h := start(t, e.jwtServerConfig())
	sources := map[string][]string{}
	for i := range 10000 {
		sources[fmt.Sprintf("x-header-%d", i)] = []string{strings.Repeat("v", 100)}
	}
	sources["authorization"] = []string{"Bearer garbage"}
	_, err := h.ext.Authenticate(context.Background(), sources)
	require.ErrorIs(t, err, errUnauthenticated)
	sources["authorization"] = []string{"Bearer " + e.v.IdentityToken(t, e.alice.Token, agentRole)}
	_, err = h.ext.Authenticate(context.Background(), sources)
	require.NoError(t, err)
}
