package vaultauthextension

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// lookupVerifier checks Vault tokens with auth/token/lookup, using the
// gateway's own token (its policy needs update on auth/token/lookup and read
// on identity/entity/id/*). Concurrent checks of one token share one lookup;
// entity names are cached per entity.
type lookupVerifier struct {
	session  *vaultclient.Session
	inflight singleflight.Group
	slots    chan struct{} // bounds lookups in flight
	rate     *rate.Limiter // bounds lookups per second
	cacheTTL time.Duration

	mu    sync.Mutex
	names map[string]entityName
}

type entityName struct {
	name    string
	expires time.Time
}

func newLookupVerifier(session *vaultclient.Session, cfg TokenLookupConfig, cacheTTL time.Duration) *lookupVerifier {
	return &lookupVerifier{
		session:  session,
		slots:    make(chan struct{}, cfg.MaxConcurrentLookups),
		rate:     rate.NewLimiter(rate.Limit(cfg.MaxLookupsPerSecond), cfg.MaxConcurrentLookups),
		cacheTTL: cacheTTL,
		names:    map[string]entityName{},
	}
}

type lookupResult struct {
	id      *identity.Identity
	expires time.Time
}

// verify looks the token up. key (the token's hash) names the shared flight,
// so the token never becomes a map key.
func (v *lookupVerifier) verify(ctx context.Context, token string, key credentialKey) (*identity.Identity, time.Time, error) {
	if !plausibleVaultToken(token) {
		return nil, time.Time{}, rejected("not shaped like a Vault token")
	}
	res, err, _ := v.inflight.Do(string(key[:]), func() (any, error) {
		if !v.rate.Allow() {
			return nil, unavailable(errors.New("lookups above max_lookups_per_second"))
		}
		select {
		case v.slots <- struct{}{}:
			defer func() { <-v.slots }()
		default:
			return nil, unavailable(errors.New("too many Vault lookups in flight"))
		}
		return v.lookup(ctx, token)
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	r := res.(lookupResult)
	return r.id, r.expires, nil
}

func (v *lookupVerifier) lookup(ctx context.Context, token string) (lookupResult, error) {
	select {
	case <-v.session.LoggedIn():
	default:
		return lookupResult{}, unavailable(errors.New("gateway not logged in to Vault yet"))
	}
	sec, err := v.session.Client().Logical().WriteWithContext(ctx, "auth/token/lookup", map[string]any{"token": token})
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden && strings.Contains(strings.Join(re.Errors, " "), "bad token") {
			return lookupResult{}, rejected("Vault does not know the token (bad token)")
		}
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
			v.session.RequestLogin() // the gateway's own token may be gone
		}
		// Never include err's request body: it holds the token. Vault's
		// ResponseError prints only method, URL, code and errors.
		return lookupResult{}, unavailable(err)
	}
	if sec == nil || sec.Data == nil {
		return lookupResult{}, rejected("empty lookup response")
	}
	entityID, _ := sec.Data["entity_id"].(string)
	if entityID == "" {
		return lookupResult{}, rejected("token has no entity")
	}
	var expires time.Time
	if ttl, err := sec.TokenTTL(); err == nil && ttl > 0 {
		expires = time.Now().Add(ttl)
	}
	nsPath, _ := sec.Data["namespace_path"].(string)
	id := &identity.Identity{
		EntityID:   entityID,
		EntityName: v.entityName(ctx, entityID),
		Namespace:  vaultclient.NamespaceFromPath(nsPath),
		Policies:   strings.Join(policies(sec.Data), ","),
	}
	return lookupResult{id: id, expires: expires}, nil
}

// entityName reads (and caches) an entity's name; "" when not permitted.
func (v *lookupVerifier) entityName(ctx context.Context, entityID string) string {
	now := time.Now()
	v.mu.Lock()
	cached, ok := v.names[entityID]
	v.mu.Unlock()
	if ok && now.Before(cached.expires) {
		return cached.name
	}
	name := ""
	if sec, err := v.session.Client().Logical().ReadWithContext(ctx, "identity/entity/id/"+entityID); err == nil && sec != nil {
		name, _ = sec.Data["name"].(string)
	}
	v.mu.Lock()
	if len(v.names) > 100000 { // bounded: entities are few, but never unbounded
		clear(v.names)
	}
	v.names[entityID] = entityName{name: name, expires: now.Add(v.cacheTTL)}
	v.mu.Unlock()
	return name
}

// policies lists token and identity policies, without duplicates, in order.
func policies(data map[string]any) []string {
	var out []string
	seen := map[string]bool{}
	for _, field := range []string{"policies", "identity_policies"} {
		list, _ := data[field].([]any)
		for _, p := range list {
			if s, ok := p.(string); ok && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// plausibleVaultToken filters what cannot be a Vault token before Vault is
// asked: service (hvs.), batch (hvb.) and legacy (s., b.) tokens, printable
// ASCII, of sane length.
func plausibleVaultToken(t string) bool {
	if len(t) < 8 || len(t) > 1024 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	for _, p := range []string{"hvs.", "hvb.", "s.", "b."} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}
