package server

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
	audit    *auditHasher // nil without server.audit
	timeout  time.Duration
	runCtx   context.Context

	inflight  singleflight.Group
	slots     chan struct{} // bounds lookups in flight
	rate      *rate.Limiter // bounds lookups per second, all clients
	perClient *clientLimiters
	entities  *entityCache
}

func newLookupVerifier(vault vaultclient.Vault, cfg LookupSettings, rules identity.Rules, tenant *tenantRule, v *verdicts, audit *auditHasher, timeout, cacheTTL time.Duration) *lookupVerifier {
	return &lookupVerifier{
		vault:     vault,
		rules:     rules,
		tenant:    tenant,
		verdicts:  v,
		audit:     audit,
		timeout:   timeout,
		runCtx:    context.Background(),
		slots:     make(chan struct{}, cfg.MaxConcurrent),
		rate:      rate.NewLimiter(rate.Limit(cfg.PerSecond), cfg.MaxConcurrent),
		perClient: newClientLimiters(cfg.PerSecondPerClient, cfg.MaxConcurrent),
		entities:  newEntityCache(cacheTTL),
	}
}

// verify looks the token up (or joins a lookup in flight) and waits for the
// verdict as long as the request lets it. key (the token's hash) names the
// shared flight, so the token never becomes a map key.
func (v *lookupVerifier) verify(ctx context.Context, token string, key Key, client string) (verdict, error) {
	if reason := vaultTokenShape(token); reason != "" {
		return verdict{}, refused(ReasonMalformed, "not a Vault token: %s", reason)
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
		return verdict{}, unavailable(ReasonRequestExpired, errors.New("the request ended before Vault answered; the lookup goes on"))
	}
}

// lookupAndRecord runs one lookup within the budgets and records its verdict.
func (v *lookupVerifier) lookupAndRecord(token string, key Key, client string) (verdict, error) {
	// A flight that ended just before this one began has recorded its
	// verdict: use it rather than ask Vault again.
	now := time.Now().UnixNano()
	if vd, ok := v.verdicts.accepted.get(key, now); ok {
		return vd, nil
	}
	if _, ok := v.verdicts.refused.get(key, now); ok {
		return verdict{}, refused(ReasonCachedRefusal, "refused moments ago")
	}
	if !v.perClient.allow(client) {
		return verdict{}, unavailable(ReasonRateLimited, errors.New("this client is above max_lookups_per_second_per_client"))
	}
	if !v.rate.Allow() {
		return verdict{}, unavailable(ReasonRateLimited, errors.New("lookups above max_lookups_per_second"))
	}
	select {
	case v.slots <- struct{}{}:
		defer func() { <-v.slots }()
	default:
		return verdict{}, unavailable(ReasonRateLimited, errors.New("too many Vault lookups in flight"))
	}
	select {
	case <-v.vault.LoggedIn():
	default:
		return verdict{}, unavailable(ReasonNotLoggedIn, errors.New("gateway not logged in to Vault yet"))
	}
	ctx, cancel := context.WithTimeout(v.runCtx, v.timeout)
	defer cancel()
	id, about, err := v.lookup(ctx, token)
	if err == nil {
		id, err = v.tenant.resolve(id)
	}
	cacheUntil := about.expires
	if err == nil {
		id, cacheUntil, err = v.audit.stamp(ctx, key, token, id, about.expires)
	}
	if err != nil {
		if verdictOf(err).checked {
			v.verdicts.refuse(key)
		}
		return verdict{}, err
	}
	return v.verdicts.accept(key, id, cacheUntil, about), nil
}

func (v *lookupVerifier) lookup(ctx context.Context, token string) (*identity.Identity, *acceptance, error) {
	sec, err := v.vault.WriteWithContext(ctx, "auth/token/lookup", map[string]any{"token": token})
	if err != nil {
		return nil, &acceptance{}, v.lookupError(err)
	}
	info, err := vaultclient.ParseTokenInfo(sec)
	if err != nil {
		return nil, &acceptance{}, unavailable(ReasonVaultUnavail, err)
	}
	if info.EntityID == "" {
		return nil, &acceptance{}, refusedChecked(ReasonNoEntity, "token has no entity")
	}
	about := &acceptance{kind: KindToken, policies: info.Policies}
	if info.TTL > 0 {
		about.expires = time.Now().Add(info.TTL)
	}
	facts := identity.Facts{Policies: info.Policies, TokenMeta: info.LoginMeta}
	if v.rules.Needs(identity.FromEntityName, identity.FromEntityMetadata, identity.FromEntityGroups) {
		e, err := v.entities.get(ctx, v.vault, info.EntityID, v.rules.Needs(identity.FromEntityGroups))
		if err != nil {
			// Not cached, and no verdict: the next request tries again.
			return nil, &acceptance{}, unavailable(ReasonVaultUnavail, err)
		}
		facts.EntityName, facts.EntityMetadata, facts.GroupNames = e.Name, e.Metadata, e.GroupNames
	}
	id := identity.New(info.EntityID, vaultclient.NamespaceFromPath(info.NamespacePath), v.rules.Apply(facts)...)
	return id, about, nil
}

// lookupError tells Vault's verdict on the token from a problem of Vault's
// or of the gateway's own token. Errors never include a request body (it
// holds the token): Vault's ResponseError prints method, URL, code and errors.
func (v *lookupVerifier) lookupError(err error) error {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return unavailable(ReasonVaultUnavail, err)
	}
	msg := strings.Join(re.Errors, " ")
	switch {
	case re.StatusCode == http.StatusForbidden && (strings.Contains(msg, "bad token") || strings.Contains(msg, "invalid token")):
		return refusedChecked(ReasonUnknownToken, "Vault does not know the token (%s)", msg)
	case re.StatusCode == http.StatusBadRequest:
		// The token is malformed in a way Vault alone can see (bad base64).
		return refusedChecked(ReasonUnknownToken, "Vault refused the token as malformed (%s)", msg)
	case re.StatusCode == http.StatusInternalServerError && strings.Contains(msg, "no namespace"):
		// A namespace suffix that names no namespace.
		return refusedChecked(ReasonUnknownToken, "the token names no known namespace")
	case re.StatusCode == http.StatusForbidden:
		v.vault.RequestLogin() // the gateway's own token may be gone
	}
	return unavailable(ReasonVaultUnavail, err)
}
