package vaultclient

import (
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// TokenInfo is what Vault says of a token in an auth/token/lookup or
// lookup-self answer.
type TokenInfo struct {
	EntityID string
	// Policies are the token's and its entity's, without duplicates, in order.
	Policies      []string
	TTL           time.Duration
	Renewable     bool
	NamespacePath string // "" in the root namespace
	// LoginMeta is the token's metadata when an auth method set it at login
	// (path auth/<method>/login...): userpass's username, AppRole's
	// role_name, Kubernetes' service_account_name. A token made with
	// auth/token/create* carries whatever meta its creator chose, so its
	// meta proves nothing: a child token of alice's with meta username=bob
	// is still alice's. Nil then.
	LoginMeta map[string]string
}

// ParseTokenInfo reads a lookup answer.
func ParseTokenInfo(sec *api.Secret) (TokenInfo, error) {
	if sec == nil || sec.Data == nil {
		return TokenInfo{}, errors.New("empty lookup response")
	}
	ttl, err := sec.TokenTTL()
	if err != nil {
		return TokenInfo{}, err
	}
	renewable, _ := sec.TokenIsRenewable()
	info := TokenInfo{
		EntityID:      str(sec.Data["entity_id"]),
		Policies:      union(stringList(sec.Data["policies"]), stringList(sec.Data["identity_policies"])),
		TTL:           ttl,
		Renewable:     renewable,
		NamespacePath: str(sec.Data["namespace_path"]),
	}
	if path := str(sec.Data["path"]); strings.HasPrefix(path, "auth/") && !strings.HasPrefix(path, "auth/token/") {
		info.LoginMeta = stringMap(sec.Data["meta"])
	}
	return info, nil
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, x := range m {
		if s, ok := x.(string); ok {
			out[k] = s
		}
	}
	return out
}
