package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The namespace stamped is the issuer's: <addr>/v1/<ns>/identity/oidc.
func TestNamespaceOfIssuer(t *testing.T) {
	for issuer, ns := range map[string]string{
		"http://127.0.0.1:8200/v1/identity/oidc":        "root",
		"https://vault.example/v1/team-a/identity/oidc": "team-a",
		"https://vault.example/v1/a/b/identity/oidc":    "a/b",
		"https://vault.example/v1/admin/identity/oidc/": "admin",
	} {
		assert.Equal(t, ns, namespaceOfIssuer(trimSlash(issuer)), issuer)
	}
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
