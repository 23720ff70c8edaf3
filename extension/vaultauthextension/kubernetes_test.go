package vaultauthextension

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/kubetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// kubeEnv is Vault with its Kubernetes auth method pointed at a real
// kube-apiserver, and a namespace "otel" with the collector's service
// account.
type kubeEnv struct {
	k  *kubetest.Server
	v  *vaulttest.Server
	sa string // the collector's service account uid
}

func newKubeEnv(t *testing.T) *kubeEnv {
	t.Helper()
	e := &kubeEnv{k: kubetest.Start(t), v: vaulttest.Start(t)}
	seedLightstep(t, e.v, "ls-token-v1")
	e.v.EnableAuth(t, "kubernetes", "kubernetes")
	e.k.Namespace(t, "otel", nil)
	e.sa = e.k.ServiceAccount(t, "otel", "collector")
	return e
}

// configure points Vault's Kubernetes auth at the API server; reviewer ""
// makes Vault review each login with the client's own JWT.
func (e *kubeEnv) configure(t *testing.T, reviewer string) {
	t.Helper()
	cfg := map[string]any{"kubernetes_host": e.k.URL, "kubernetes_ca_cert": e.k.CAPEM, "disable_local_ca_jwt": true}
	if reviewer != "" {
		cfg["token_reviewer_jwt"] = reviewer
	}
	e.v.Write(t, "auth/kubernetes/config", cfg)
}

// role makes a role bound to otel/collector, tokens for audience "vault".
func (e *kubeEnv) role(t *testing.T, name string, extra map[string]any) {
	t.Helper()
	r := map[string]any{
		"bound_service_account_names": "collector", "bound_service_account_namespaces": "otel",
		"audience": "vault", "token_policies": readPolicy, "token_ttl": "1h",
	}
	for k, v := range extra {
		r[k] = v
	}
	e.v.Write(t, "auth/kubernetes/role/"+name, r)
}

// login logs in as a collector does, with no token on the request.
func (e *kubeEnv) login(t *testing.T, role, jwt string) (*api.Secret, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.v.ClientWithToken(t, "").Logical().WriteWithContext(ctx, "auth/kubernetes/login", map[string]any{"role": role, "jwt": jwt})
}

// reviewer makes Vault review logins with a reviewer service account's
// token, bound to system:auth-delegator.
func (e *kubeEnv) reviewer(t *testing.T) {
	t.Helper()
	e.k.ServiceAccount(t, "otel", "vault-reviewer")
	e.k.BindClusterRole(t, "vault-reviewer-auth-delegator", "system:auth-delegator", "otel", "vault-reviewer")
	e.configure(t, e.token(t, "vault-reviewer"))
}

func (e *kubeEnv) token(t *testing.T, sa string, audiences ...string) string {
	t.Helper()
	return e.k.Token(t, "otel", sa, kubetest.TokenOptions{Audiences: audiences, ExpirationSeconds: 3607})
}

// Vault's Kubernetes auth against a real kube-apiserver, with tokens from
// the TokenRequest API as the kubelet projects them (audience, 3607 s):
// both review modes docs/kubernetes.md describes, what each needs from
// RBAC, and every token the API server would refuse refused by Vault.
func TestKubernetesLoginAgainstTheAPIServer(t *testing.T) {
	e := newKubeEnv(t)
	e.role(t, "otel-collector", nil)

	// Vault calls the TokenReview API with the token it reviews: the token
	// must be one the API server accepts as a bearer token (its own
	// audience, as the automounted token has), and its service account
	// must be allowed to create TokenReviews.
	t.Run("the client's JWT as reviewer", func(t *testing.T) {
		e.configure(t, "")
		e.role(t, "automounted", map[string]any{"audience": ""})
		automounted := e.token(t, "collector")
		_, err := e.login(t, "automounted", automounted)
		require.Error(t, err, "a service account that may not create TokenReviews logged in")
		e.k.BindClusterRole(t, "collector-auth-delegator", "system:auth-delegator", "otel", "collector")
		var sec *api.Secret
		require.Eventually(t, func() bool { sec, err = e.login(t, "automounted", automounted); return err == nil }, eventually, poll,
			"not logged in once bound to system:auth-delegator: %v", err)
		assert.Equal(t, "collector", sec.Auth.Metadata["service_account_name"])
		assert.Equal(t, e.sa, sec.Auth.Metadata["service_account_uid"])

		_, err = e.login(t, "otel-collector", e.token(t, "collector", "vault"))
		require.Error(t, err, "a token for Vault's audience only cannot call the API server: it cannot review itself")
		_, err = e.login(t, "otel-collector", e.token(t, "collector", kubetest.Issuer, "vault"))
		require.NoError(t, err, "a token for both audiences")
	})

	t.Run("a reviewer token: the client needs no RBAC", func(t *testing.T) {
		e.reviewer(t)
		e.k.ServiceAccount(t, "otel", "collector-2")
		e.role(t, "otel-collector-2", map[string]any{"bound_service_account_names": "collector-2"})
		_, err := e.login(t, "otel-collector-2", e.token(t, "collector-2", "vault"))
		require.NoError(t, err, "a service account without RBAC, reviewed by the reviewer token")
	})

	t.Run("refused", func(t *testing.T) {
		e.k.ServiceAccount(t, "otel", "intruder")
		e.k.Namespace(t, "elsewhere", nil)
		e.k.ServiceAccount(t, "elsewhere", "collector")
		valid := e.token(t, "collector", "vault")
		_, err := e.login(t, "otel-collector", valid)
		require.NoError(t, err, "the control: a valid token logs in")
		// The same token, as the API server would have signed it an hour ago:
		// the control shows the re-signed token is otherwise faithful.
		resigned := e.k.Resign(t, valid, func(c kubetest.Object) {})
		_, err = e.login(t, "otel-collector", resigned)
		require.NoError(t, err, "the control: the re-signed token logs in")
		expired := e.k.Resign(t, valid, func(c kubetest.Object) {
			c["iat"], c["nbf"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		})
		for name, jwt := range map[string]string{
			"another service account":            e.token(t, "intruder", "vault"),
			"the same name in another namespace": e.k.Token(t, "elsewhere", "collector", kubetest.TokenOptions{Audiences: []string{"vault"}}),
			"another audience":                   e.token(t, "collector", "not-vault"),
			"the API server's own audience":      e.token(t, "collector"),
			"expired (signed by the API server)": expired,
			"signed by another key":              vaulttest.NewSigner(t).Sign(t, map[string]any{"iss": kubetest.Issuer, "sub": "system:serviceaccount:otel:collector", "aud": "vault"}),
		} {
			_, err := e.login(t, "otel-collector", jwt)
			assert.Error(t, err, "%s: logged in", name)
		}
		// Deleting the service account revokes its tokens at the next review.
		before := e.token(t, "collector-2", "vault")
		_, err = e.login(t, "otel-collector-2", before)
		require.NoError(t, err, "the control: the token logs in while its service account exists")
		e.k.Delete(t, "/api/v1/namespaces/otel/serviceaccounts/collector-2")
		deleted := time.Now()
		assert.Eventually(t, func() bool { _, err := e.login(t, "otel-collector-2", before); return err != nil }, eventually, poll,
			"a deleted service account's token logged in")
		t.Logf("a deleted service account's token was refused %s after the deletion", time.Since(deleted).Round(100*time.Millisecond))
	})

	// alias_name_source picks what names the entity alias: the service
	// account's uid (the default: a re-created account is a new identity)
	// or namespace/name (a re-created account keeps its entity).
	t.Run("alias_name_source", func(t *testing.T) {
		e.role(t, "by-name", map[string]any{"alias_name_source": "serviceaccount_name"})
		jwt := e.token(t, "collector", "vault")
		for role, want := range map[string]string{"otel-collector": e.sa, "by-name": "otel/collector"} {
			sec, err := e.login(t, role, jwt)
			require.NoError(t, err)
			entity := e.v.Read(t, "identity/entity/id/"+sec.Auth.EntityID)
			var names []string
			for _, a := range entity.Data["aliases"].([]any) {
				names = append(names, a.(map[string]any)["name"].(string))
			}
			assert.Equal(t, []string{want}, names, "%s: the entity's alias names", role)
		}
	})
}

// The projected token rotated by the kubelet while the collector keeps
// exporting: the token file is swapped in the kubelet's ..data layout, the
// old token is invalidated (its bound object deleted, as when the kubelet
// replaces a pod's token), and when the Vault token reaches its max TTL
// the extension logs in again with the new token. Not one export lacks
// the credential.
func TestKubernetesProjectedTokenRotation(t *testing.T) {
	e := newKubeEnv(t)
	e.reviewer(t)
	e.role(t, "otel-collector", map[string]any{"token_ttl": "2s", "token_max_ttl": "4s"})
	proxy := vaulttest.NewCountingProxy(t, e.v)
	const login = "auth/kubernetes/login"

	bound := func(name string) string {
		uid := e.k.Secret(t, "otel", name)
		return e.k.Token(t, "otel", "collector", kubetest.TokenOptions{
			Audiences: []string{"vault"}, ExpirationSeconds: 3607, BoundSecret: name, BoundSecretUID: uid,
		})
	}
	first := bound("pod-token-1")
	vol := kubetest.NewProjectedVolume(t, first)
	cfg := clientConfig(proxy.Addr)
	a := auth(cfg)
	a.Method, a.Role, a.JWTFile = "kubernetes", "otel-collector", vol.TokenFile()
	h := startExtension(t, cfg)
	h.waitSent(t, "ls-token-v1")

	vol.Write(t, bound("pod-token-2"))
	e.k.Delete(t, "/api/v1/namespaces/otel/secrets/pod-token-1")
	require.Eventually(t, func() bool { _, err := e.login(t, "otel-collector", first); return err != nil }, eventually, poll,
		"the old token still logs in: the test proves nothing")
	rotatedAt := proxy.Count(login)

	// Exports go on, each with the credential, across two more logins made
	// with the rotated token.
	exports, missing := 0, 0
	deadline := time.Now().Add(eventually)
	for proxy.Count(login) < rotatedAt+2 && time.Now().Before(deadline) {
		exports++
		if h.sent(t) != "ls-token-v1" {
			missing++
		}
		time.Sleep(10 * time.Millisecond) // an export every 10 ms
	}
	require.GreaterOrEqual(t, proxy.Count(login), rotatedAt+2, "no login with the rotated token")
	assert.Zero(t, missing, "exports without the credential, of %d", exports)
	t.Logf("%d exports across the token rotation, %d without the credential; %d logins", exports, missing, proxy.Count(login))
}
