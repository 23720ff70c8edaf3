package testbed

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// T is what the helpers need of a test (or of the demo's runner).
type T = vaulttest.T

type setupFile struct {
	Auth     []struct{ Path, Type string } `yaml:"auth"`
	Policies []string                      `yaml:"policies"`
	Writes   []struct {
		Path string         `yaml:"path"`
		Data map[string]any `yaml:"data"`
	} `yaml:"writes"`
}

// ConfigureVault applies examples/vault/setup.yaml and the policies beside it,
// makes identity tokens name clientAddr (the address collectors use, e.g. a
// proxy) as their issuer, and returns the otel-agent role's audience.
func ConfigureVault(t T, v *vaulttest.Server, clientAddr string) (audience string) {
	t.Helper()
	raw, err := os.ReadFile(Example("vault/setup.yaml"))
	if err != nil {
		t.Fatalf("read setup: %v", err)
	}
	var setup setupFile
	if err := yaml.Unmarshal(raw, &setup); err != nil {
		t.Fatalf("parse setup: %v", err)
	}
	for _, a := range setup.Auth {
		v.EnableAuth(t, a.Path, a.Type)
	}
	for _, name := range setup.Policies {
		hcl, err := os.ReadFile(Example(filepath.Join("vault", name+".hcl")))
		if err != nil {
			t.Fatalf("read policy %s: %v", name, err)
		}
		v.PutPolicy(t, name, string(hcl))
	}
	v.Write(t, "identity/oidc/config", map[string]any{"issuer": clientAddr})
	for _, w := range setup.Writes {
		v.Write(t, w.Path, w.Data)
	}
	return v.Read(t, "identity/oidc/role/otel-agent").Data["client_id"].(string)
}

// Credentials are an AppRole role id and secret id in files, as a
// collector's config points to them.
type Credentials struct {
	RoleIDFile, SecretIDFile string
	RoleID                   string
}

// AppRoleCredentials writes files for a new secret id of role.
func AppRoleCredentials(t T, v *vaulttest.Server, role string) Credentials {
	t.Helper()
	roleID := v.Read(t, "auth/approle/role/"+role+"/role-id").Data["role_id"].(string)
	dir := t.TempDir()
	c := Credentials{RoleIDFile: filepath.Join(dir, "role-id"), SecretIDFile: filepath.Join(dir, "secret-id"), RoleID: roleID}
	write(t, c.RoleIDFile, roleID)
	write(t, c.SecretIDFile, v.NewSecretID(t, role))
	return c
}

// Workload is one application with an identity of its own in Vault: an
// AppRole role made like otel-agent, and an entity named after it.
type Workload struct {
	Name     string
	EntityID string
	Credentials
}

// NewWorkload creates the workload's role (settings of otel-agent), a named
// entity, and the alias that makes the role's logins that entity.
func NewWorkload(t T, v *vaulttest.Server, name string) Workload {
	t.Helper()
	return newEntityRole(t, v, name, "otel-agent", nil)
}

// NewTeamWorkload is NewWorkload for a workload of a team: its entity's
// metadata says team=<team> (set by Vault admins; the agent's identity
// token carries it as the claim the multi-team gateway routes by).
func NewTeamWorkload(t T, v *vaulttest.Server, name, team string) Workload {
	t.Helper()
	return newEntityRole(t, v, name, "otel-agent", map[string]any{"team": team})
}

// newEntityRole creates AppRole role name with the settings of base, an
// entity named name with metadata, and the alias that makes the role's
// logins that entity.
func newEntityRole(t T, v *vaulttest.Server, name, base string, metadata map[string]any) Workload {
	t.Helper()
	v.Write(t, "auth/approle/role/"+name, v.Read(t, "auth/approle/role/"+base).Data)
	creds := AppRoleCredentials(t, v, name)
	entity := map[string]any{"name": name}
	if metadata != nil {
		entity["metadata"] = metadata
	}
	entityID := v.Write(t, "identity/entity", entity).Data["id"].(string)
	auths, err := v.Client.Sys().ListAuthWithContext(context.Background())
	if err != nil {
		t.Fatalf("list auth: %v", err)
	}
	v.Write(t, "identity/entity-alias", map[string]any{
		"name": creds.RoleID, "canonical_id": entityID, "mount_accessor": auths["approle/"].Accessor,
	})
	return Workload{Name: name, EntityID: entityID, Credentials: creds}
}

// TeamTokenWriter logs in as team's token writer (a role made like
// lightstep-team-writer, an entity with metadata team=<team>) and returns a
// function that writes a new version of that team's Lightstep token.
func TeamTokenWriter(t T, v *vaulttest.Server, team string) func(token string) int {
	t.Helper()
	w := newEntityRole(t, v, "lightstep-writer-"+team, "lightstep-team-writer", map[string]any{"team": team})
	return kvWriter(t, v, w.Credentials, "lightstep/teams/"+team)
}

// kvWriter logs in with creds and returns a function that writes a new
// access_token version at path (under the KV v2 mount secret).
func kvWriter(t T, v *vaulttest.Server, creds Credentials, path string) func(token string) int {
	t.Helper()
	secretID, _ := os.ReadFile(creds.SecretIDFile)
	login := v.Write(t, "auth/approle/login", map[string]any{"role_id": creds.RoleID, "secret_id": strings.TrimSpace(string(secretID))})
	writer := v.ClientWithToken(t, login.Auth.ClientToken)
	return func(token string) int {
		sec, err := writer.KVv2("secret").Put(context.Background(), path, map[string]any{"access_token": token})
		if err != nil {
			t.Fatalf("token writer for %s: %v", path, err)
		}
		return sec.VersionMetadata.Version
	}
}

// TokenWriter logs in as lightstep-token-writer and returns a function that
// writes a new version of the Lightstep token, as an operator rotating it would.
func TokenWriter(t T, v *vaulttest.Server) func(token string) int {
	t.Helper()
	return kvWriter(t, v, AppRoleCredentials(t, v, "lightstep-token-writer"), "lightstep/prod")
}

func write(t T, path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// IdentityToken logs in as the workload and returns its Vault identity
// token for the agents' role: what its agent sends a gateway.
func (w Workload) IdentityToken(t T, v *vaulttest.Server) string {
	t.Helper()
	secretID, _ := os.ReadFile(w.SecretIDFile)
	login := v.Write(t, "auth/approle/login", map[string]any{"role_id": w.RoleID, "secret_id": strings.TrimSpace(string(secretID))})
	return v.IdentityToken(t, login.Auth.ClientToken, "otel-agent")
}
