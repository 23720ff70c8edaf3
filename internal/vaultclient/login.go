package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// login performs one login with the configured method and returns the new
// token in Secret.Auth. It works on a copy of base (headers kept, for the
// namespace), so requests in flight keep the current token until the caller
// swaps it. For the token method it looks the token up instead, so that its
// TTL and renewability are known.
func login(ctx context.Context, base *api.Client, cfg AuthConfig) (*api.Secret, error) {
	client, err := base.CloneWithHeaders()
	if err != nil {
		return nil, err
	}
	client.ClearToken()
	mount := cfg.ResolvedMountPath()
	var method api.AuthMethod
	switch cfg.Method {
	case MethodToken:
		token := string(cfg.Token)
		if cfg.TokenFile != "" {
			if token, err = readTrimmed(cfg.TokenFile); err != nil {
				return nil, fmt.Errorf("auth.token_file: %w", err)
			}
		}
		client.SetToken(token)
		sec, err := client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("token lookup-self: %w", err)
		}
		return tokenSecret(sec, token)
	case MethodAppRole:
		roleID := string(cfg.RoleID)
		if cfg.RoleIDFile != "" {
			if roleID, err = readTrimmed(cfg.RoleIDFile); err != nil {
				return nil, fmt.Errorf("auth.role_id_file: %w", err)
			}
		}
		secretID := &approle.SecretID{FromString: string(cfg.SecretID), FromFile: cfg.SecretIDFile}
		m, err := approle.NewAppRoleAuth(roleID, secretID, approle.WithMountPath(mount))
		if err != nil {
			return nil, fmt.Errorf("approle: %w", err)
		}
		method = m
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
		method = m
	case MethodJWT:
		method = jwtAuth{mount: mount, role: cfg.Role, file: cfg.JWTFile}
	default:
		return nil, fmt.Errorf("auth.method: unknown %q", cfg.Method)
	}
	sec, err := client.Auth().Login(ctx, method)
	if err != nil {
		return nil, fmt.Errorf("%s login at auth/%s: %w", cfg.Method, mount, err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%s login at auth/%s: no token in response", cfg.Method, mount)
	}
	return sec, nil
}

// tokenSecret turns a lookup-self answer into the shape LifetimeWatcher
// renews (an Auth block).
func tokenSecret(lookup *api.Secret, token string) (*api.Secret, error) {
	if lookup == nil {
		return nil, errors.New("token lookup-self: empty response")
	}
	ttl, err := lookup.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("token lookup-self: %w", err)
	}
	renewable, _ := lookup.TokenIsRenewable()
	entityID, _ := lookup.Data["entity_id"].(string)
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   token,
		Renewable:     renewable,
		LeaseDuration: int(ttl.Seconds()),
		EntityID:      entityID,
	}}, nil
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
