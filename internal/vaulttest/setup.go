package vaulttest

import (
	"path/filepath"
	"strings"

	"github.com/hashicorp/vault/api"
)

// PutKV2 writes data at path in the KV v2 mount "secret" and returns the new version.
func (s *Server) PutKV2(t T, path string, data map[string]any) int {
	t.Helper()
	sec, err := s.Client.KVv2("secret").Put(ctx(t), path, data)
	if err != nil {
		t.Fatalf("kv2 put %s: %v", path, err)
	}
	return sec.VersionMetadata.Version
}

// PutPolicy writes an ACL policy.
func (s *Server) PutPolicy(t T, name, hcl string) {
	t.Helper()
	if err := s.Client.Sys().PutPolicyWithContext(ctx(t), name, hcl); err != nil {
		t.Fatalf("put policy %s: %v", name, err)
	}
}

// EnableAuth mounts an auth method at path once; later calls are no-ops.
func (s *Server) EnableAuth(t T, path, method string) {
	t.Helper()
	err := s.Client.Sys().EnableAuthWithOptionsWithContext(ctx(t), path, &api.EnableAuthOptions{Type: method})
	if err != nil && !strings.Contains(err.Error(), "path is already in use") {
		t.Fatalf("enable auth %s at %s: %v", method, path, err)
	}
}

// Write writes data at a raw API path with the root token and fails the test on error.
func (s *Server) Write(t T, path string, data map[string]any) *api.Secret {
	t.Helper()
	sec, err := s.Client.Logical().WriteWithContext(ctx(t), path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return sec
}

// Delete deletes a raw API path with the root token and fails the test on error.
func (s *Server) Delete(t T, path string) {
	t.Helper()
	if _, err := s.Client.Logical().DeleteWithContext(ctx(t), path); err != nil {
		t.Fatalf("delete %s: %v", path, err)
	}
}

// Read reads a raw API path with the root token and fails the test on error.
func (s *Server) Read(t T, path string) *api.Secret {
	t.Helper()
	sec, err := s.Client.Logical().ReadWithContext(ctx(t), path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if sec == nil {
		t.Fatalf("read %s: nothing there", path)
	}
	return sec
}

// AppRole creates role under the "approle" mount with the given token
// settings (e.g. token_policies, token_ttl) and returns its role id and a new
// secret id.
func (s *Server) AppRole(t T, role string, settings map[string]any) (roleID, secretID string) {
	t.Helper()
	s.EnableAuth(t, "approle", "approle")
	s.Write(t, "auth/approle/role/"+role, settings)
	roleID = s.Read(t, "auth/approle/role/"+role+"/role-id").Data["role_id"].(string)
	return roleID, s.NewSecretID(t, role)
}

// NewSecretID issues another secret id for an AppRole role.
// WrappedSecretID returns a response-wrapping token of a new secret id of
// role, as a trusted orchestrator hands it to the machine that logs in.
func (s *Server) WrappedSecretID(t T, role string) string {
	t.Helper()
	c, err := s.Client.Clone()
	if err != nil {
		t.Fatalf("clone client: %v", err)
	}
	c.SetToken(s.RootToken)
	c.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	sec, err := c.Logical().WriteWithContext(ctx(t), "auth/approle/role/"+role+"/secret-id", nil)
	if err != nil || sec == nil || sec.WrapInfo == nil {
		t.Fatalf("wrapped secret id of %s: %v", role, err)
	}
	return sec.WrapInfo.Token
}

func (s *Server) NewSecretID(t T, role string) string {
	t.Helper()
	return s.Write(t, "auth/approle/role/"+role+"/secret-id", nil).Data["secret_id"].(string)
}

// Workload is a userpass identity with a named entity, as a workload that
// sends telemetry has.
type Workload struct {
	Name     string // the user name and the entity name
	EntityID string
	Token    string // a Vault token logged in as this workload
	Password string // its userpass password, for more logins
}

// UserpassWorkload creates entity name, a userpass user of the same name
// aliased to it, logs in, and returns the workload with its token.
func (s *Server) UserpassWorkload(t T, name string, policies ...string) Workload {
	t.Helper()
	s.EnableAuth(t, "userpass", "userpass")
	password := randomID()
	s.Write(t, "auth/userpass/users/"+name, map[string]any{
		"password":       password,
		"token_policies": strings.Join(policies, ","),
	})
	entityID := s.Write(t, "identity/entity", map[string]any{"name": name}).Data["id"].(string)
	auths, err := s.Client.Sys().ListAuthWithContext(ctx(t))
	if err != nil {
		t.Fatalf("list auth: %v", err)
	}
	s.Write(t, "identity/entity-alias", map[string]any{
		"name":           name,
		"canonical_id":   entityID,
		"mount_accessor": auths["userpass/"].Accessor,
	})
	login := s.userpassLogin(t, name, password)
	if login.Auth.EntityID != entityID {
		t.Fatalf("userpass login for %s got entity %q, want %q", name, login.Auth.EntityID, entityID)
	}
	return Workload{Name: name, EntityID: entityID, Token: login.Auth.ClientToken, Password: password}
}

// Login logs the workload in again: a new token of the same entity.
func (s *Server) Login(t T, w Workload) string {
	t.Helper()
	return s.userpassLogin(t, w.Name, w.Password).Auth.ClientToken
}

// AppRoleLogin logs in with a new secret id of an existing AppRole role,
// as a collector does (no token on the request): the token and its entity.
func (s *Server) AppRoleLogin(t T, role string) Workload {
	t.Helper()
	roleID := s.Read(t, "auth/approle/role/"+role+"/role-id").Data["role_id"].(string)
	sec, err := s.ClientWithToken(t, "").Logical().WriteWithContext(ctx(t), "auth/approle/login",
		map[string]any{"role_id": roleID, "secret_id": s.NewSecretID(t, role)})
	if err != nil {
		t.Fatalf("approle login %s: %v", role, err)
	}
	return Workload{Name: role, EntityID: sec.Auth.EntityID, Token: sec.Auth.ClientToken}
}

// userpassLogin logs in as a workload does: without a token on the request
// (Vault's audit log records a login made with a token under that token).
func (s *Server) userpassLogin(t T, name, password string) *api.Secret {
	t.Helper()
	sec, err := s.ClientWithToken(t, "").Logical().WriteWithContext(ctx(t), "auth/userpass/login/"+name, map[string]any{"password": password})
	if err != nil {
		t.Fatalf("userpass login %s: %v", name, err)
	}
	return sec
}

// ClientWithToken returns a client for this server that uses token.
func (s *Server) ClientWithToken(t T, token string) *api.Client {
	t.Helper()
	c, err := s.Client.Clone()
	if err != nil {
		t.Fatalf("clone client: %v", err)
	}
	c.SetToken(token)
	return c
}

// EnableFileAudit enables Vault's file audit device at path `file` (the
// device the examples hash with), writing to a file in a test directory,
// and returns the file. Requests before it are not in the log.
func (s *Server) EnableFileAudit(t T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vault-audit.log")
	s.Write(t, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": path}})
	return path
}
