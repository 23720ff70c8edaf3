package vaulttest

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
