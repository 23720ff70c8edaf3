package vaultauthextension

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwks is one issuer's key set, fetched from <issuer>/.well-known/keys.
// Vault publishes the current and the next key of each named key, so a
// fetch on an unknown key id (at most once per refetchEvery) follows
// rotations without a restart.
type jwks struct {
	url          string
	http         *http.Client
	refetchEvery time.Duration

	keys atomic.Pointer[jose.JSONWebKeySet] // nil until the first fetch

	mu        sync.Mutex // serialises fetches
	lastFetch time.Time
}

// maxJWKSBody bounds what is read from the JWKS endpoint.
const maxJWKSBody = 1 << 20

func newJWKS(issuer string, client *http.Client, refetchEvery time.Duration) *jwks {
	return &jwks{url: issuer + "/.well-known/keys", http: client, refetchEvery: refetchEvery}
}

// key returns the key with id kid, fetching the set when the id is unknown
// and the last fetch is old enough. fetched reports a fetch failure, so the
// caller can tell "no such key" from "keys unavailable".
func (j *jwks) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	if k := lookupKey(j.keys.Load(), kid); k != nil {
		return k, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	// Another request may have fetched while this one waited.
	if k := lookupKey(j.keys.Load(), kid); k != nil {
		return k, nil
	}
	if time.Since(j.lastFetch) < j.refetchEvery {
		if j.keys.Load() == nil {
			return nil, errKeysUnavailable
		}
		return nil, errUnknownKey
	}
	j.lastFetch = time.Now()
	if err := j.fetch(ctx); err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	if k := lookupKey(j.keys.Load(), kid); k != nil {
		return k, nil
	}
	return nil, errUnknownKey
}

func (j *jwks) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return err
	}
	resp, err := j.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", j.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBody)).Decode(&set); err != nil {
		return fmt.Errorf("GET %s: %w", j.url, err)
	}
	j.keys.Store(&set)
	return nil
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
