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
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/racedetect"
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
	return identityEnvOn(t, vaulttest.Start(t))
}

// identityEnvOn sets the identity environment up on v (a TLS server, say).
func identityEnvOn(t *testing.T, v *vaulttest.Server) *identityEnv {
	t.Helper()
	e := &identityEnv{v: v, entityTmpl: `{"entity_name": {{identity.entity.name}}}`}
	e.audience = v.OIDCRole(t, "otel", agentRole, e.entityTmpl, "1h")
	v.PutPolicy(t, "otel-agent", `path "identity/oidc/token/*" { capabilities = ["read"] }`)
	e.alice = v.UserpassWorkload(t, "alice", "otel-agent")
	e.bob = v.UserpassWorkload(t, "bob", "otel-agent")
	return e
}

// jwtServerConfig is a gateway in identity_token mode for this Vault.
func (e *identityEnv) jwtServerConfig() *Config { return serverConfig(e.v.Addr, e.audience) }

// serverConfig verifies identity tokens of audience from the Vault at addr.
func serverConfig(addr, audience string) *Config {
	cfg := createDefaultConfig()
	cfg.Vault.Address = addr
	cfg.Vault.Retry.InitialInterval = 20 * time.Millisecond
	cfg.Vault.Retry.MaxInterval = 200 * time.Millisecond
	cfg.Server.GetOrInsertDefault().IdentityToken.GetOrInsertDefault().Audience = audience
	return cfg
}

func authenticate(h *harness, values ...string) (*identity.Identity, error) {
	sources := map[string][]string{}
	if len(values) > 0 {
		sources["authorization"] = values
	}
	ctx, err := h.ext.(extensionauth.Server).Authenticate(context.Background(), sources)
	if err != nil {
		return nil, err
	}
	auth, ok := client.FromContext(ctx).Auth.(identity.AuthData)
	if !ok || auth.Identity == nil {
		return nil, errors.New("authenticated without an identity")
	}
	return auth.Identity, nil
}

// attributes is what an identity carries, in order.
func attributes(entityID, name string) []identity.Attribute {
	return []identity.Attribute{
		{Key: identity.EntityID, Value: entityID}, {Key: identity.Namespace, Value: "root"}, {Key: identity.EntityName, Value: name},
	}
}

// refusals counts the server's requests by outcome and reason, from its telemetry.
func (h *harness) refusals(t *testing.T, outcome, reason string) int64 {
	t.Helper()
	n, _ := h.sumWhere(t, "otelcol_vaultauth_server_requests", "outcome="+outcome, "reason="+reason)
	return n
}

func TestIdentityTokenAccepted(t *testing.T) {
	e := newIdentityEnv(t)
	h := startExtension(t, e.jwtServerConfig())
	for _, w := range []vaulttest.Workload{e.alice, e.bob} {
		id, err := authenticate(h, "Bearer "+e.v.IdentityToken(t, w.Token, agentRole))
		require.NoError(t, err, w.Name)
		assert.Equal(t, attributes(w.EntityID, w.Name), id.Attributes())
	}
	// gRPC metadata keys are lower-case, HTTP header keys canonical: both work.
	jwt := e.v.IdentityToken(t, e.alice.Token, agentRole)
	ctx, err := h.ext.(extensionauth.Server).Authenticate(context.Background(), map[string][]string{"Authorization": {"Bearer " + jwt}})
	require.NoError(t, err)
	auth := client.FromContext(ctx).Auth
	assert.Equal(t, e.alice.EntityID, auth.GetAttribute(identity.EntityID))
	assert.Equal(t, e.alice.EntityID, auth.GetAttribute(identity.Subject))
	assert.Equal(t, "root", auth.GetAttribute(identity.Namespace))
	assert.Equal(t, []string{identity.EntityID, identity.Namespace, identity.EntityName, identity.Subject}, auth.GetAttributeNames())
}

func TestIdentityTokenRejected(t *testing.T) {
	e := newIdentityEnv(t)
	h := startExtension(t, e.jwtServerConfig())
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
		reason string // counted, and logged at warn level; never in the response
		detail string // in the log
	}{
		{"no header", nil, reasonNoCredential, ""},
		{"two credentials", []string{"Bearer " + valid, "Bearer " + valid}, reasonMultiple, ""},
		{"Bearer with nothing", []string{"Bearer "}, reasonNoCredential, ""},
		{"garbage", []string{"Bearer not.a.jwt"}, reasonMalformed, "not a signed JWT"},
		{"wrong audience", []string{"Bearer " + wrongAudience}, reasonInvalidClaims, "invalid audience"},
		{"alg none", []string{"Bearer " + none}, reasonAlgorithm, `algorithm "none"`},
		{"HMAC with the public key", []string{"Bearer " + hmacWithPublicKey}, reasonAlgorithm, `algorithm "HS256"`},
		{"tampered payload", []string{"Bearer " + tampered}, reasonBadSignature, "signature"},
		{"oversized", []string{"Bearer " + strings.Repeat("a", 1<<20)}, reasonOversized, ""},
		{"not UTF-8", []string{"Bearer \xff\xfe\xfd"}, reasonMalformed, "not a signed JWT"},
	}
	warnedFor := map[string]bool{} // warnings are rate-limited per reason: the first says its detail
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.refusals(t, "refused", tc.reason)
			_, err := authenticate(h, tc.values...)
			require.ErrorIs(t, err, errUnauthenticated)
			assert.Equal(t, "unauthenticated", err.Error(), "the sender must not learn why")
			assert.Equal(t, before+1, h.refusals(t, "refused", tc.reason), "counted under its reason")
			warned := h.logs.FilterLevelExact(zapcore.WarnLevel).FilterField(zap.String("reason", tc.reason))
			require.Positive(t, warned.Len(), "a warning names the reason")
			if first := !warnedFor[tc.reason]; first && tc.detail != "" {
				warnedFor[tc.reason] = true
				found := false
				for _, e := range h.logs.FilterLevelExact(zapcore.WarnLevel).All() {
					found = found || strings.Contains(fmt.Sprint(e.ContextMap()["detail"]), tc.detail)
				}
				assert.True(t, found, "no warning says %q", tc.detail)
			}
		})
	}
	// A key the issuer does not publish: the sender is told to retry while
	// the key set may be stale (a rotation), refused once a fetch shows the
	// key is not there; never cached, since no signature was checked.
	_, err = authenticate(h, "Bearer "+foreign)
	require.ErrorIs(t, err, errVerifierUnavailable)
	for _, w := range h.logs.All() {
		assert.NotContains(t, fmt.Sprint(w.Message, w.ContextMap()), valid, "a credential was logged")
	}
	// The valid token still passes after all that.
	_, err = authenticate(h, "Bearer "+valid)
	require.NoError(t, err)
}

func TestIdentityTokenWrongIssuer(t *testing.T) {
	e := newIdentityEnv(t)
	cfg := e.jwtServerConfig()
	cfg.Server.Get().IdentityToken.Get().Issuers = []string{"https://vault.other.example/v1/identity/oidc"}
	h := startExtension(t, cfg)
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
	h := startExtension(t, cfg)
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
	h := startExtension(t, cfg)
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

// A credential refused after a check of its own (here: its audience) is
// answered from the negative cache; one refused before any check (its
// issuer) is not remembered, and costs no Vault call either.
func TestNegativeCache(t *testing.T) {
	e := newIdentityEnv(t)
	h := startExtension(t, e.jwtServerConfig())
	e.v.OIDCRole(t, "otel", "other-audience", e.entityTmpl, "1h")
	wrongAudience := e.v.IdentityToken(t, e.alice.Token, "other-audience")
	for range 100 {
		_, err := authenticate(h, "Bearer "+wrongAudience)
		require.ErrorIs(t, err, errUnauthenticated)
	}
	assert.EqualValues(t, 1, h.refusals(t, "refused", reasonInvalidClaims))
	assert.EqualValues(t, 99, h.refusals(t, "refused", reasonCachedRefusal))
	for range 100 {
		_, err := authenticate(h, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
		require.ErrorIs(t, err, errUnauthenticated)
	}
	assert.EqualValues(t, 100, h.refusals(t, "refused", reasonUnknownIssuer))
	warned := h.logs.FilterLevelExact(zapcore.WarnLevel).FilterField(zap.String("reason", reasonUnknownIssuer))
	assert.Equal(t, 1, warned.Len(), "100 refusals, one warning: rate-limited per reason")

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
	h := startExtension(t, e.jwtServerConfig())
	sources := map[string][]string{}
	for i := range 10000 {
		sources[fmt.Sprintf("x-header-%d", i)] = []string{strings.Repeat("v", 100)}
	}
	sources["authorization"] = []string{"Bearer garbage"}
	_, err := h.ext.(extensionauth.Server).Authenticate(context.Background(), sources)
	require.ErrorIs(t, err, errUnauthenticated)
	sources["authorization"] = []string{"Bearer " + e.v.IdentityToken(t, e.alice.Token, agentRole)}
	_, err = h.ext.(extensionauth.Server).Authenticate(context.Background(), sources)
	require.NoError(t, err)
}

// A request whose credential was verified before allocates only what the
// Collector's client.NewContext does (the Info boxed into the context, and
// the context): the verdict, its identity and metadata are built once, and
// telemetry records without allocating.
func TestRepeatedCredentialAllocations(t *testing.T) {
	e := newIdentityEnv(t)
	h := startExtension(t, e.jwtServerConfig())
	sources := map[string][]string{"authorization": {"Bearer " + e.v.IdentityToken(t, e.alice.Token, agentRole)}}
	server := h.ext.(extensionauth.Server)
	_, err := server.Authenticate(context.Background(), sources)
	require.NoError(t, err)
	if racedetect.Enabled {
		t.Skip("allocation counts are not the product's under the race detector (sync.Pool drops at random)")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := server.Authenticate(context.Background(), sources); err != nil {
			t.Fatal(err)
		}
	})
	assert.LessOrEqual(t, allocs, 2.0, "allocations per request with a cached verdict")
}

// A flood of refused credentials costs the gateway no allocation per request
// once each is cached as refused.
func TestRepeatedRefusalAllocations(t *testing.T) {
	e := newIdentityEnv(t)
	h := startExtension(t, e.jwtServerConfig())
	e.v.OIDCRole(t, "otel", "other-audience", e.entityTmpl, "1h")
	sources := map[string][]string{"authorization": {"Bearer " + e.v.IdentityToken(t, e.alice.Token, "other-audience")}}
	server := h.ext.(extensionauth.Server)
	_, err := server.Authenticate(context.Background(), sources)
	require.ErrorIs(t, err, errUnauthenticated)
	if racedetect.Enabled {
		t.Skip("allocation counts are not the product's under the race detector (sync.Pool drops at random)")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := server.Authenticate(context.Background(), sources); !errors.Is(err, errUnauthenticated) {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "allocations per refused request with a cached refusal")
}
