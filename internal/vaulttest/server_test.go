package vaulttest

import (
	"testing"

	"github.com/hashicorp/vault/api"
)

// TestDevServer proves the test bed: a real server, KV v2 versions, and an
// AppRole login that yields an entity.
func TestDevServer(t *testing.T) {
	s := Start(t)

	if v := s.PutKV2(t, "lightstep/prod", map[string]any{"access_token": "first"}); v != 1 {
		t.Fatalf("first write: version %d, want 1", v)
	}
	if v := s.PutKV2(t, "lightstep/prod", map[string]any{"access_token": "second"}); v != 2 {
		t.Fatalf("second write: version %d, want 2", v)
	}
	for version, want := range map[int]string{1: "first", 2: "second"} {
		sec, err := s.Client.KVv2("secret").GetVersion(ctx(t), "lightstep/prod", version)
		if err != nil {
			t.Fatalf("read version %d: %v", version, err)
		}
		if got := sec.Data["access_token"]; got != want {
			t.Errorf("version %d holds %v, want %q", version, got, want)
		}
	}

	s.PutPolicy(t, "read-lightstep", `path "secret/data/lightstep/*" { capabilities = ["read"] }`)
	roleID, secretID := s.AppRole(t, "collector", map[string]any{"token_policies": "read-lightstep"})
	login, err := s.Client.Logical().WriteWithContext(ctx(t), "auth/approle/login",
		map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		t.Fatalf("approle login: %v", err)
	}
	if login.Auth == nil || login.Auth.EntityID == "" {
		t.Fatalf("approle login returned no entity_id")
	}
	c := s.ClientWithToken(t, login.Auth.ClientToken)
	sec, err := c.KVv2("secret").Get(ctx(t), "lightstep/prod")
	if err != nil {
		t.Fatalf("read with approle token: %v", err)
	}
	if got := sec.Data["access_token"]; got != "second" {
		t.Errorf("approle token read %v, want the newest version", got)
	}
}

func TestProxyCutsAndRestores(t *testing.T) {
	s := Start(t)
	p := NewProxy(t, s.HostPort())
	cfg := api.DefaultConfig()
	cfg.Address = p.Addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sys().Health(); err != nil {
		t.Fatalf("through proxy: %v", err)
	}
	p.SetDown(true)
	if _, err := c.Sys().Health(); err == nil {
		t.Fatalf("health succeeded while the proxy was down")
	}
	p.SetDown(false)
	if _, err := c.Sys().Health(); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}
