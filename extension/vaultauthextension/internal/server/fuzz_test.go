package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// FuzzCredential: whatever headers arrive, the extracted credential is
// either refused with a reason or non-empty, trimmed, without the Bearer
// prefix, and within max_credential_size.
func FuzzCredential(f *testing.F) {
	for _, seed := range []string{"Bearer abc", "bearer abc", "Bearer ", "", "   ", "BEARER x", "Bearer \xff\xfe", "Bearer Bearer x", "abc"} {
		f.Add(seed, "", false)
	}
	f.Add("Bearer a", "Bearer b", true)
	cfg := Settings{Header: "authorization", MaxCredentialSize: 256}
	s := &Authenticator{s: cfg, headerLower: "authorization", headerCanonical: "Authorization"}
	f.Fuzz(func(t *testing.T, value, second string, two bool) {
		for _, key := range []string{"authorization", "Authorization"} {
			values := []string{value}
			if two {
				values = append(values, second)
			}
			cred, reason := s.credential(map[string][]string{key: values})
			if reason != "" {
				if cred != "" {
					t.Fatal("a credential came with a refusal")
				}
				continue
			}
			if two {
				t.Fatal("accepted two credentials")
			}
			if cred == "" || cred != strings.TrimSpace(cred) || len(cred) > cfg.MaxCredentialSize {
				t.Fatalf("bad credential %q", cred)
			}
		}
	})
}

// FuzzVerifyJWT: mutations of a validly signed token, and arbitrary strings,
// never panic, and are accepted only with a subject and an expiry ahead.
func FuzzVerifyJWT(f *testing.F) {
	signer := vaulttest.NewSigner(f)
	issuer := "https://vault.example/v1/identity/oidc"
	claims := map[string]any{"iss": issuer, "sub": "entity-1", "aud": "otel", "entity_name": "payments",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	valid := signer.Sign(f, claims)
	f.Add(valid)
	f.Add(valid[:len(valid)-4])
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("")

	cfg := JWTSettings{Audience: "otel", Issuers: []string{issuer}, Leeway: 10 * time.Second,
		RefetchInterval: time.Hour, RefreshInterval: time.Hour} // never fetch: the key set below is all there is
	rules, err := identity.ParseRules(map[string]string{identity.EntityName: "claim:entity_name"})
	if err != nil {
		f.Fatal(err)
	}
	vault := vaultclient.DefaultVaultConfig()
	v := newJWTVerifier(cfg, rules, nil, newVerdicts(Settings{CacheSize: 100, CacheTTL: time.Minute}), nil, vault, nil, zap.NewNop())
	keys := v.issuers[issuer].keys
	keys.keys.Store(&jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &signer.Key.PublicKey, KeyID: signer.KID, Algorithm: "RS256", Use: "sig"}}})
	keys.lastOK = time.Now()
	f.Fuzz(func(t *testing.T, token string) {
		id, exp, err := v.check(context.Background(), token)
		if err != nil {
			return
		}
		if id.EntityID() == "" || !exp.expires.After(time.Now().Add(-cfg.Leeway)) {
			t.Fatalf("accepted %+v expiring %s", id.Attributes(), exp.expires)
		}
	})
}

// FuzzTokenShape: a string the shape check lets through is one Vault's
// token formats allow (prefix, base64url body, a namespace suffix of 1 to 5
// letters or digits); the check never panics.
func FuzzTokenShape(f *testing.F) {
	for _, seed := range []string{"hvs.AAAAAAAAAAAAAAAAAAAAAAAA", "hvs.abc.def", "hvb.short!", "hvb.A", "s.AAAAAAAAAAAAAAAAAAAAAAAA.ns1",
		"hvs.AAAAAAAAAAAAAAAAAAAAAAAA.", "b.AAAA", "hvr.x", "", "hvs." + strings.Repeat("A", 2000)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if vaultTokenShape(token) != "" {
			return
		}
		rest := ""
		for _, p := range []string{"hvs.", "hvb.", "s.", "b."} {
			if strings.HasPrefix(token, p) {
				rest = token[len(p):]
				break
			}
		}
		body, ns, _ := strings.Cut(rest, ".")
		if body == "" || len(token) > 1024 || strings.Contains(ns, ".") || len(ns) > 5 {
			t.Fatalf("accepted %q", token)
		}
		if strings.Trim(body+ns, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			t.Fatalf("accepted %q: a character outside base64url", token)
		}
	})
}
