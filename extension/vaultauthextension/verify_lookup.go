package vaultauthextension

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// lookupVerifier checks Vault tokens with auth/token/lookup, using the
// gateway's own token (its policy needs update on auth/token/lookup, and
// read on identity/entity/id/* when a rule needs the entity).
//
// Lookups and entity reads run on the extension's context with Vault's
// timeout, never on a request's: a sender's short deadline cannot turn into
// a failed (or cached) verdict for anyone. Concurrent checks of one token
// share one lookup, whose verdict is cached even when every request that
// waited for it has gone. The lookup budget is shared fairly: each client
// address gets at most max_lookups_per_second_per_client of the whole.
type lookupVerifier struct {
	vault    vaultclient.Vault
	rules    identity.Rules
	tenant   *tenantRule
	verdicts *verdicts
	timeout  time.Duration
	runCtx   context.Context

	inflight  singleflight.Group
	slots     chan struct{} // bounds lookups in flight
	rate      *rate.Limiter // bounds lookups per second, all clients
	perClient *clientLimiters
	entities  *entityCache
}

func newLookupVerifier(vault vaultclient.Vault, cfg TokenLookupConfig, rules identity.Rules, tenant *tenantRule, v *verdicts, timeout, cacheTTL time.Duration) *lookupVerifier {
	return &lookupVerifier{
		vault:     vault,
		rules:     rules,
		tenant:    tenant,
		verdicts:  v,
		timeout:   timeout,
		runCtx:    context.Background(),
		slots:     make(chan struct{}, cfg.MaxConcurrentLookups),
		rate:      rate.NewLimiter(rate.Limit(cfg.MaxLookupsPerSecond), cfg.MaxConcurrentLookups),
		perClient: newClientLimiters(cfg.perClientRate(), cfg.MaxConcurrentLookups),
		entities:  newEntityCache(cacheTTL),
	}
}

// verify looks the token up (or joins a lookup in flight) and waits for the
// verdict as long as the request lets it. key (the token's hash) names the
// shared flight, so the token never becomes a map key.
func (v *lookupVerifier) verify(ctx context.Context, token string, key credentialKey, client string) (verdict, error) {
	if reason := vaultTokenShape(token); reason != "" {
		return verdict{}, refused(reasonMalformed, "not a Vault token: %s", reason)
	}
	ch := v.inflight.DoChan(string(key[:]), func() (any, error) {
		return v.lookupAndRecord(token, key, client)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return verdict{}, res.Err
		}
		return res.Val.(verdict), nil
	case <-ctx.Done():
		return verdict{}, unavailable(reasonRequestExpired, errors.New("the request ended before Vault answered; the lookup goes on"))
	}
}

// lookupAndRecord runs one lookup within the budgets and records its verdict.
func (v *lookupVerifier) lookupAndRecord(token string, key credentialKey, client string) (verdict, error) {
	// A flight that ended just before this one began has recorded its
	// verdict: use it rather than ask Vault again.
	now := time.Now().UnixNano()
	if vd, ok := v.verdicts.accepted.get(key, now); ok {
		return vd, nil
	}
	if _, ok := v.verdicts.refused.get(key, now); ok {
		return verdict{}, refused(reasonCachedRefusal, "refused moments ago")
	}
	if !v.perClient.allow(client) {
		return verdict{}, unavailable(reasonRateLimited, errors.New("this client is above max_lookups_per_second_per_client"))
	}
	if !v.rate.Allow() {
		return verdict{}, unavailable(reasonRateLimited, errors.New("lookups above max_lookups_per_second"))
	}
	select {
	case v.slots <- struct{}{}:
		defer func() { <-v.slots }()
	default:
		return verdict{}, unavailable(reasonRateLimited, errors.New("too many Vault lookups in flight"))
	}
	select {
	case <-v.vault.LoggedIn():
	default:
		return verdict{}, unavailable(reasonNotLoggedIn, errors.New("gateway not logged in to Vault yet"))
	}
	ctx, cancel := context.WithTimeout(v.runCtx, v.timeout)
	defer cancel()
	id, expires, err := v.lookup(ctx, token)
	if err == nil {
		id, err = v.tenant.resolve(id)
	}
	if err != nil {
		if verdictOf(err).checked {
			v.verdicts.refuse(key)
		}
		return verdict{}, err
	}
	return v.verdicts.accept(key, id, expires), nil
}

func (v *lookupVerifier) lookup(ctx context.Context, token string) (*identity.Identity, time.Time, error) {
	sec, err := v.vault.WriteWithContext(ctx, "auth/token/lookup", map[string]any{"token": token})
	if err != nil {
		return nil, time.Time{}, v.lookupError(err)
	}
	if sec == nil || sec.Data == nil {
		return nil, time.Time{}, unavailable(reasonVaultUnavail, errors.New("empty lookup response"))
	}
	entityID, _ := sec.Data["entity_id"].(string)
	if entityID == "" {
		return nil, time.Time{}, refusedChecked(reasonNoEntity, "token has no entity")
	}
	var expires time.Time
	if ttl, err := sec.TokenTTL(); err == nil && ttl > 0 {
		expires = time.Now().Add(ttl)
	}
	facts := identity.Facts{Policies: policies(sec.Data), TokenMeta: loginMeta(sec.Data)}
	if v.rules.Needs(identity.FromEntityName, identity.FromEntityMetadata, identity.FromEntityGroups) {
		e, err := v.entities.get(ctx, v.vault, entityID, v.rules.Needs(identity.FromEntityGroups))
		if err != nil {
			// Not cached, and no verdict: the next request tries again.
			return nil, time.Time{}, unavailable(reasonVaultUnavail, err)
		}
		facts.EntityName, facts.EntityMetadata, facts.GroupNames = e.Name, e.Metadata, e.GroupNames
	}
	nsPath, _ := sec.Data["namespace_path"].(string)
	id := identity.New(entityID, vaultclient.NamespaceFromPath(nsPath), v.rules.Apply(facts)...)
	return id, expires, nil
}

// lookupError tells Vault's verdict on the token from a problem of Vault's
// or of the gateway's own token. Errors never include a request body (it
// holds the token): Vault's ResponseError prints method, URL, code and errors.
func (v *lookupVerifier) lookupError(err error) error {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return unavailable(reasonVaultUnavail, err)
	}
	msg := strings.Join(re.Errors, " ")
	switch {
	case re.StatusCode == http.StatusForbidden && (strings.Contains(msg, "bad token") || strings.Contains(msg, "invalid token")):
		return refusedChecked(reasonUnknownToken, "Vault does not know the token (%s)", msg)
	case re.StatusCode == http.StatusBadRequest:
		// The token is malformed in a way Vault alone can see (bad base64).
		return refusedChecked(reasonUnknownToken, "Vault refused the token as malformed (%s)", msg)
	case re.StatusCode == http.StatusInternalServerError && strings.Contains(msg, "no namespace"):
		// A namespace suffix that names no namespace.
		return refusedChecked(reasonUnknownToken, "the token names no known namespace")
	case re.StatusCode == http.StatusForbidden:
		v.vault.RequestLogin() // the gateway's own token may be gone
	}
	return unavailable(reasonVaultUnavail, err)
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

// loginMeta is the token's metadata when an auth method set it at login
// (path auth/<method>/login...): userpass's username, AppRole's role_name,
// Kubernetes' service_account_name. A token made with auth/token/create*
// carries whatever meta its creator chose, so its meta proves nothing: a
// child token of alice's with meta username=bob is still alice's. Nil then.
func loginMeta(data map[string]any) map[string]string {
	path, _ := data["path"].(string)
	if !strings.HasPrefix(path, "auth/") || strings.HasPrefix(path, "auth/token/") {
		return nil
	}
	return stringMap(data["meta"])
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
