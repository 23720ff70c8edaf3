package vaultauthextension

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Each login method the dev server supports reads the secret with the
// token it got, and the extension sends the value.
func TestLoginMethods(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")

	t.Run("token", func(t *testing.T) {
		cfg := newConfig(v.Addr)
		cfg.Auth.Token = configToken(t, v)
		start(t, cfg).waitValue(t, "ls-token-v1")
	})

	t.Run("token_file", func(t *testing.T) {
		cfg := newConfig(v.Addr)
		cfg.Auth.Token = ""
		cfg.Auth.TokenFile = writeFile(t, t.TempDir(), "token", childToken(t, v, "1h")+"\n")
		start(t, cfg).waitValue(t, "ls-token-v1")
	})

	t.Run("approle", func(t *testing.T) {
		roleID, secretID := v.AppRole(t, "otel-collector", map[string]any{"token_policies": readPolicy})
		dir := t.TempDir()
		cfg := newConfig(v.Addr)
		cfg.Auth.Method = "approle"
		cfg.Auth.RoleIDFile = writeFile(t, dir, "role-id", roleID)
		cfg.Auth.SecretIDFile = writeFile(t, dir, "secret-id", secretID)
		start(t, cfg).waitValue(t, "ls-token-v1")
	})

	t.Run("jwt", func(t *testing.T) {
		signer := vaulttest.NewSigner(t)
		v.EnableAuth(t, "jwt", "jwt")
		v.Write(t, "auth/jwt/config", map[string]any{
			"jwt_validation_pubkeys": []string{signer.PublicPEM(t)},
			"bound_issuer":           "https://ci.example",
		})
		v.Write(t, "auth/jwt/role/otel-collector", map[string]any{
			"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"vault"},
			"token_policies": []string{readPolicy}, "token_ttl": "1h",
		})
		jwt := signer.Sign(t, map[string]any{
			"iss": "https://ci.example", "sub": "collector-1", "aud": "vault",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		})
		cfg := newConfig(v.Addr)
		cfg.Auth.Method, cfg.Auth.Role = "jwt", "otel-collector"
		cfg.Auth.JWTFile = writeFile(t, t.TempDir(), "jwt", jwt)
		start(t, cfg).waitValue(t, "ls-token-v1")
	})

	// Kubernetes auth needs a TokenReview API; the dev server calls this fake
	// one, which approves the service account token it is shown. Vault and
	// the login are real.
	t.Run("kubernetes (fake TokenReview API)", func(t *testing.T) {
		signer := vaulttest.NewSigner(t)
		saJWT := signer.Sign(t, map[string]any{
			"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:otel:collector",
			"kubernetes.io/serviceaccount/namespace":            "otel",
			"kubernetes.io/serviceaccount/service-account.name": "collector",
			"kubernetes.io/serviceaccount/service-account.uid":  "6b1f0a1e-uid",
		})
		reviews := make(chan struct{}, 16)
		tokenReview := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var review struct {
				Spec struct{ Token string } `json:"spec"`
			}
			_ = json.NewDecoder(r.Body).Decode(&review)
			ok := r.URL.Path == "/apis/authentication.k8s.io/v1/tokenreviews" && review.Spec.Token == saJWT
			reviews <- struct{}{}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
				"status": map[string]any{"authenticated": ok, "user": map[string]any{
					"username": "system:serviceaccount:otel:collector", "uid": "6b1f0a1e-uid",
				}},
			})
		}))
		t.Cleanup(tokenReview.Close)
		v.EnableAuth(t, "kubernetes", "kubernetes")
		v.Write(t, "auth/kubernetes/config", map[string]any{
			"kubernetes_host": tokenReview.URL, "disable_local_ca_jwt": true,
			"kubernetes_ca_cert": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tokenReview.Certificate().Raw})),
		})
		v.Write(t, "auth/kubernetes/role/otel-collector", map[string]any{
			"bound_service_account_names": "collector", "bound_service_account_namespaces": "otel",
			"token_policies": readPolicy, "token_ttl": "1h",
		})
		cfg := newConfig(v.Addr)
		cfg.Auth.Method, cfg.Auth.Role = "kubernetes", "otel-collector"
		cfg.Auth.JWTFile = writeFile(t, t.TempDir(), "sa-token", saJWT)
		start(t, cfg).waitValue(t, "ls-token-v1")
		require.NotEmpty(t, reviews, "Vault never asked the TokenReview API")
	})
}

// A wrong credential never logs in: nothing is sent, the status says why.
func TestLoginFailureReportsStatus(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	cfg := newConfig(v.Addr)
	cfg.Auth.Token = "hvs.not-a-token"
	h := start(t, cfg)
	h.waitStatus(t, componentstatus.StatusRecoverableError)
	require.Empty(t, h.value())
	require.True(t, strings.Contains(h.ext.errNoCredential.Error(), lightstepAPI))
}
