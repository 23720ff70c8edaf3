package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// loginResult is what one login yields: the token and what is known about
// it without another call.
type loginResult struct {
	token     string // "" for method agent: the agent adds its own
	renewable bool
	ttl       time.Duration
	entityID  string
	policies  []string // token and identity policies
	namespace string   // namespace path ("" for the root namespace)
	auth      *api.Secret
	requestID string // Vault's request id of the login (or lookup): its audit entry
}

// login performs one login with the configured method. It works on a copy
// of base (headers kept, for the namespace), so requests in flight keep the
// current token until the caller swaps it. The token method (and agent)
// look the token up instead, so that its TTL, renewability and entity are
// known.
func login(ctx context.Context, base *api.Client, cfg AuthConfig) (loginResult, error) {
	client, err := base.CloneWithHeaders()
	if err != nil {
		return loginResult{}, err
	}
	client.ClearToken()
	if cfg.Method == MethodToken || cfg.Method == MethodAgent {
		return lookupSelf(ctx, client, cfg)
	}
	mount := cfg.ResolvedMountPath()
	method, err := authMethod(ctx, base, cfg, mount)
	if err != nil {
		return loginResult{}, err
	}
	sec, err := client.Auth().Login(ctx, method)
	if err != nil {
		return loginResult{}, fmt.Errorf("%s login at auth/%s: %w", cfg.Method, mount, err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return loginResult{}, fmt.Errorf("%s login at auth/%s: no token in response", cfg.Method, mount)
	}
	a := sec.Auth
	return loginResult{
		token: a.ClientToken, renewable: a.Renewable, ttl: ttlOf(a.LeaseDuration), entityID: a.EntityID,
		policies: union(a.TokenPolicies, a.IdentityPolicies), auth: sec, requestID: sec.RequestID,
	}, nil
}

// lookupSelf "logs in" with a token (or through a Vault Agent, which adds
// its own): the token is looked up, so its TTL, renewability and entity
// are known.
func lookupSelf(ctx context.Context, client *api.Client, cfg AuthConfig) (loginResult, error) {
	token := string(cfg.Token)
	if cfg.TokenFile != "" {
		var err error
		if token, err = readTrimmed(cfg.TokenFile); err != nil {
			return loginResult{}, fmt.Errorf("auth.token_file: %w", err)
		}
	}
	if token != "" {
		client.SetToken(token)
	}
	sec, err := client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return loginResult{}, fmt.Errorf("token lookup-self: %w", err)
	}
	return fromLookup(sec, token)
}

// authMethod is the login of an auth method (AppRole, Kubernetes, JWT),
// its credentials read from their files at every login.
func authMethod(ctx context.Context, base *api.Client, cfg AuthConfig, mount string) (api.AuthMethod, error) {
	switch cfg.Method {
	case MethodAppRole:
		roleID, secretID, err := appRoleCredentials(ctx, base, cfg)
		if err != nil {
			return nil, err
		}
		m, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: secretID}, approle.WithMountPath(mount))
		if err != nil {
			return nil, fmt.Errorf("approle: %w", err)
		}
		return m, nil
	case MethodKubernetes:
		jwtFile := cfg.JWTFile
		if jwtFile == "" {
			jwtFile = DefaultKubernetesJWTFile
		}
		m, err := kubernetes.NewKubernetesAuth(cfg.Role,
			kubernetes.WithMountPath(mount), kubernetes.WithServiceAccountTokenPath(jwtFile))
		if err != nil {
			return nil, fmt.Errorf("kubernetes: %w", err)
		}
		return m, nil
	case MethodJWT:
		return jwtAuth{mount: mount, role: cfg.Role, file: cfg.JWTFile}, nil
	}
	return nil, fmt.Errorf("auth.method: unknown %q", cfg.Method)
}

// appRoleCredentials reads the role id and the secret id (unwrapping it
// when it is a response-wrapping token).
func appRoleCredentials(ctx context.Context, base *api.Client, cfg AuthConfig) (roleID, secretID string, err error) {
	roleID = string(cfg.RoleID)
	if cfg.RoleIDFile != "" {
		if roleID, err = readTrimmed(cfg.RoleIDFile); err != nil {
			return "", "", fmt.Errorf("auth.role_id_file: %w", err)
		}
	}
	secretID = string(cfg.SecretID)
	if cfg.SecretIDFile != "" {
		if secretID, err = readTrimmed(cfg.SecretIDFile); err != nil {
			return "", "", fmt.Errorf("auth.secret_id_file: %w", err)
		}
	}
	if cfg.SecretIDWrapped {
		if secretID, err = unwrapSecretID(ctx, base, secretID); err != nil {
			return "", "", err
		}
	}
	return roleID, secretID, nil
}

// fromLookup reads a lookup-self answer.
func fromLookup(sec *api.Secret, token string) (loginResult, error) {
	info, err := ParseTokenInfo(sec)
	if err != nil {
		return loginResult{}, fmt.Errorf("token lookup-self: %w", err)
	}
	r := loginResult{
		token: token, renewable: info.Renewable, ttl: info.TTL,
		entityID: info.EntityID, policies: info.Policies, namespace: info.NamespacePath, requestID: sec.RequestID,
	}
	if token != "" {
		// The shape LifetimeWatcher renews.
		r.auth = &api.Secret{Auth: &api.SecretAuth{ClientToken: token, Renewable: info.Renewable, LeaseDuration: int(info.TTL.Seconds())}}
	}
	return r, nil
}

// unwrapSecretID unwraps a response-wrapped AppRole secret id (single use:
// whoever delivers it writes a new one for the next login).
func unwrapSecretID(ctx context.Context, base *api.Client, wrappingToken string) (string, error) {
	c, err := base.CloneWithHeaders()
	if err != nil {
		return "", err
	}
	c.SetToken(wrappingToken)
	sec, err := c.Logical().UnwrapWithContext(ctx, "")
	if err != nil {
		return "", fmt.Errorf("auth.secret_id_wrapped: unwrap: %w", err)
	}
	if sec == nil || str(sec.Data["secret_id"]) == "" {
		return "", errors.New("auth.secret_id_wrapped: the wrapped response holds no secret_id")
	}
	return str(sec.Data["secret_id"]), nil
}

// jwtAuth logs in with a JWT read from a file at every login, so a rotated
// file is picked up (the api module has no JWT helper).
type jwtAuth struct{ mount, role, file string }

func (j jwtAuth) Login(ctx context.Context, client *api.Client) (*api.Secret, error) {
	jwt, err := readTrimmed(j.file)
	if err != nil {
		return nil, fmt.Errorf("auth.jwt_file: %w", err)
	}
	return client.Logical().WriteWithContext(ctx, "auth/"+j.mount+"/login",
		map[string]any{"role": j.role, "jwt": jwt})
}

// readTrimmed reads a credential file; errors name the file, never its content.
func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// ttlOf is a lease duration in seconds; 0 for none (a root token).
func ttlOf(seconds int) time.Duration {
	if seconds <= 0 {
		return 0
	}
	return lifetime(seconds)
}

func str(v any) string { s, _ := v.(string); return s }

// stringList reads a JSON list of strings.
func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// union lists a then the elements of b not in a, without duplicates.
func union(a, b []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, list := range [][]string{a, b} {
		for _, s := range list {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}
