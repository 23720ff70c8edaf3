package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

var (
	errKeysUnavailable = errors.New("issuer keys unavailable")
	errUnknownKey      = errors.New("signing key not in the issuer's key set")
)

// jwks is one issuer's key set, fetched from <issuer>/.well-known/keys.
// Vault publishes the current and the next key of each named key, so a
// fetch on an unknown key id follows rotations without a restart.
//
// No request can steer a fetch: fetches run on the extension's own context
// with their own timeout, one at a time, and every request that needs one
// waits for the same fetch (or gives up on its own deadline while the fetch
// goes on). The refetch clock moves only on success; failures back off on
// their own schedule, retried in the background until keys arrive.
type jwks struct {
	url          string
	http         *http.Client
	timeout      time.Duration // of one fetch
	refetchEvery time.Duration // least time between fetches caused by unknown key ids
	refreshEvery time.Duration // fetch anyway this often, so keys Vault dropped stop verifying

	keys atomic.Pointer[jose.JSONWebKeySet] // nil until the first successful fetch

	mu      sync.Mutex
	pending chan struct{} // closed when the fetch in flight ends; nil when none
	lastOK  time.Time     // end of the last successful fetch
	// lastOKStart is when the last successful fetch began: a key id first
	// seen before it, and absent from its answer, is not published.
	lastOKStart time.Time
	// unknownSince is when each key id not in the set was first asked for
	// (bounded: maxUnknownKeyIDs, then forgotten all at once).
	unknownSince map[string]time.Time
	lastErr      error     // error of the last fetch; nil after a success
	retryAt      time.Time // after a failure, no fetch before this
	backoff      *vaultclient.Backoff
	wanted       chan struct{} // an unknown key id waits for the next allowed fetch

	runCtx context.Context
	wg     sync.WaitGroup

	issuer     string
	logger     *zap.Logger
	discovered bool // run's own: the issuer's discovery document was read
}

// maxJWKSBody bounds what is read from the JWKS endpoint.
const maxJWKSBody = 1 << 20

// maxUnknownKeyIDs bounds the key ids remembered as asked for; a flood of
// made-up ids only makes them be forgotten, which delays their refusal.
const maxUnknownKeyIDs = 1024

func newJWKS(issuer string, client *http.Client, cfg JWTSettings, timeout time.Duration, retry vaultclient.RetryConfig, logger *zap.Logger) *jwks {
	return &jwks{
		issuer: issuer, logger: logger,
		url: issuer + "/.well-known/keys", http: client, timeout: timeout,
		refetchEvery: cfg.RefetchInterval, refreshEvery: cfg.RefreshInterval,
		backoff: vaultclient.NewBackoff(retry), wanted: make(chan struct{}, 1),
		runCtx: context.Background(), unknownSince: map[string]time.Time{},
	}
}

// run fetches the keys at start, retries failures with backoff, serves
// deferred refetches for unknown key ids, and refreshes on schedule, until
// ctx ends; then it waits for a fetch in flight.
func (j *jwks) run(ctx context.Context) {
	j.mu.Lock()
	j.runCtx = ctx
	j.mu.Unlock()
	defer j.wg.Wait()
	for {
		j.mu.Lock()
		done := j.pending
		if done == nil {
			done = j.startFetchLocked()
		}
		j.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-done:
		}
		if !j.discovered && j.keys.Load() != nil {
			j.discover(ctx)
		}
		if !j.sleep(ctx) {
			return
		}
	}
}

// sleep waits until the next fetch is due: the retry time after a failure,
// the refetch time when a request wants one, the refresh time otherwise.
func (j *jwks) sleep(ctx context.Context) bool {
	j.mu.Lock()
	failed, retryAt, nextRefetch := j.lastErr != nil, j.retryAt, j.lastOK.Add(j.refetchEvery)
	refresh := j.lastOK.Add(j.refreshEvery)
	j.mu.Unlock()
	wait := time.Until(refresh)
	if failed {
		wait = time.Until(retryAt)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-j.wanted:
		if failed {
			// A failure's retry is already scheduled; waiting for it.
			select {
			case <-ctx.Done():
				return false
			case <-t.C:
				return true
			}
		}
		t.Reset(time.Until(nextRefetch))
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
}

// key returns the key with id kid. An unknown id waits for a fetch when one
// is in flight or allowed now, and otherwise asks for one at the next
// allowed time: errKeysUnavailable (the sender retries) unless a completed
// fetch shows that the issuer really does not publish the key. That fetch
// may be one made for an earlier request: an id first asked for before a
// successful fetch began, and not in its answer, is refused from then on,
// so a sender retrying a token of another issuer's key learns within about
// one jwks_refetch_interval that it is refused, while a key Vault has just
// rotated in is found by that same fetch.
func (j *jwks) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	if k := lookupKey(j.keys.Load(), kid); k != nil {
		return k, nil
	}
	j.mu.Lock()
	if k := lookupKey(j.keys.Load(), kid); k != nil {
		j.mu.Unlock()
		return k, nil
	}
	now := time.Now()
	since, asked := j.unknownSince[kid]
	if asked && j.lastErr == nil && j.lastOKStart.After(since) {
		j.mu.Unlock()
		return nil, errUnknownKey
	}
	if !asked {
		if len(j.unknownSince) >= maxUnknownKeyIDs {
			clear(j.unknownSince)
		}
		j.unknownSince[kid] = now
	}
	done := j.pending
	if done == nil {
		switch {
		case j.lastErr != nil && now.Before(j.retryAt):
			err := j.lastErr
			j.mu.Unlock()
			return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
		case j.lastErr == nil && !j.lastOK.IsZero() && now.Sub(j.lastOK) < j.refetchEvery:
			j.mu.Unlock()
			select {
			case j.wanted <- struct{}{}:
			default:
			}
			return nil, fmt.Errorf("%w: key id not seen yet; keys refetched within %s", errKeysUnavailable, j.refetchEvery)
		}
		done = j.startFetchLocked()
	}
	j.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: request ended while the keys were fetched", errKeysUnavailable)
	}
	if k := lookupKey(j.keys.Load(), kid); k != nil {
		return k, nil
	}
	j.mu.Lock()
	err := j.lastErr
	j.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	return nil, errUnknownKey
}

// startFetchLocked starts a fetch on the run context; j.mu must be held.
func (j *jwks) startFetchLocked() chan struct{} {
	done := make(chan struct{})
	j.pending = done
	ctx := j.runCtx
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		started := time.Now()
		fetchCtx, cancel := context.WithTimeout(ctx, j.timeout)
		set, err := j.fetch(fetchCtx)
		cancel()
		j.mu.Lock()
		if err == nil {
			j.keys.Store(set)
			j.lastOK, j.lastOKStart, j.lastErr = time.Now(), started, nil
			j.backoff.Reset()
		} else {
			j.lastErr, j.retryAt = err, time.Now().Add(j.backoff.Delay())
		}
		j.pending = nil
		j.mu.Unlock()
		close(done)
	}()
	return done
}

func (j *jwks) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := j.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", j.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBody)).Decode(&set); err != nil {
		return nil, fmt.Errorf("GET %s: %w", j.url, err)
	}
	return &set, nil
}

func lookupKey(set *jose.JSONWebKeySet, kid string) *jose.JSONWebKey {
	if set == nil || kid == "" {
		return nil
	}
	for i := range set.Keys {
		if set.Keys[i].KeyID == kid && set.Keys[i].IsPublic() {
			return &set.Keys[i]
		}
	}
	return nil
}

// discover reads the issuer's OpenID discovery document once Vault answers,
// and warns when the issuer Vault puts in its tokens is not the one
// configured (a load balancer, an in-cluster address, an HCP namespace):
// otherwise every token would be refused as unknown_issuer, silently.
func (j *jwks) discover(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	u := j.issuer + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return
	}
	resp, err := j.http.Do(req)
	if err != nil {
		j.logger.Debug("issuer discovery failed; trying again with the next key fetch", zap.String("url", u), zap.Error(err))
		return
	}
	defer func() { _ = resp.Body.Close() }()
	j.discovered = true
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBody)).Decode(&doc) != nil {
		j.logger.Warn("the issuer serves no OpenID discovery document: is it a Vault identity token issuer?",
			zap.String("url", u), zap.String("status", resp.Status))
		return
	}
	if strings.TrimRight(doc.Issuer, "/") != j.issuer {
		j.logger.Warn("Vault issues identity tokens as another issuer than configured: tokens will be refused (unknown_issuer). "+
			"Set server.identity_token.issuers to what Vault says, or Vault's identity/oidc/config issuer to the address collectors use",
			zap.String("configured", j.issuer), zap.String("vault_says", doc.Issuer))
		return
	}
	j.logger.Debug("issuer confirmed by its discovery document", zap.String("issuer", j.issuer))
}
