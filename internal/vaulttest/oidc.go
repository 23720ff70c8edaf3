package vaulttest

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
)

// OIDCRole creates (or updates) identity OIDC key and role, with the role's
// token template and TTL, and returns the role's client_id: the audience its
// tokens carry.
func (s *Server) OIDCRole(t T, key, role, template, ttl string) string {
	t.Helper()
	s.Write(t, "identity/oidc/key/"+key, map[string]any{
		"allowed_client_ids": "*", "algorithm": "RS256", "rotation_period": "24h", "verification_ttl": "24h",
	})
	s.Write(t, "identity/oidc/role/"+role, map[string]any{"key": key, "template": template, "ttl": ttl})
	return s.Read(t, "identity/oidc/role/"+role).Data["client_id"].(string)
}

// IdentityToken returns a Vault identity token for role, requested with token
// (which must have an entity and read on identity/oidc/token/<role>).
func (s *Server) IdentityToken(t T, token, role string) string {
	t.Helper()
	sec, err := s.ClientWithToken(t, token).Logical().ReadWithContext(ctx(t), "identity/oidc/token/"+role)
	if err != nil {
		t.Fatalf("identity token for role %s: %v", role, err)
	}
	return sec.Data["token"].(string)
}

// AuditLog enables a file audit device and returns its path; CountRequests
// reads it. Vault's own audit log counts what reached Vault, with no proxy.
func (s *Server) AuditLog(t T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	s.Write(t, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": path}})
	return path
}

// CountRequests counts the audited requests to an API path (e.g. auth/token/lookup).
func CountRequests(t T, auditLog, apiPath string) int {
	t.Helper()
	f, err := os.Open(auditLog)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var entry struct {
			Type    string `json:"type"`
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Type == "request" && entry.Request.Path == apiPath {
			n++
		}
	}
	return n
}
