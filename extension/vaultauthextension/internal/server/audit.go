package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/sync/singleflight"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// What the server does with a credential it verified but Vault could not
// hash (server.audit.on_failure).
const (
	// AuditHold tells the sender to retry (Unavailable): nothing passes
	// without its join key, and nothing is lost. The default.
	AuditHold = "hold"
	// AuditRefuse refuses the request (Unauthenticated), not cached.
	AuditRefuse = "refuse"
	// AuditStampWithout accepts without vault.credential.hmac, trusted
	// only for auditRetryAfter so the hash is tried again soon.
	AuditStampWithout = "stamp_without"
)

// auditRetryAfter is how long a verdict stamped without its HMAC is cached.
const auditRetryAfter = 10 * time.Second

// AuditSettings is the `server.audit` block.
type AuditSettings struct {
	Device    string // the audit device path, as in sys/audit-hash/<device>
	OnFailure string // AuditHold, AuditRefuse or AuditStampWithout
}

// auditHasher adds the Vault audit HMAC of each newly verified credential
// to its identity: one sys/audit-hash call per new credential, never per
// request. Calls run on the extension's context with Vault's timeout, shared
// by concurrent requests with one credential, and their result is kept
// even when every request that waited has gone, so a sender's deadline
// cannot turn into a failure for it or anyone.
type auditHasher struct {
	s       AuditSettings
	vault   vaultclient.Vault
	timeout time.Duration
	runCtx  context.Context

	flights singleflight.Group
	hashed  *expiringCache[string] // HMACs by credential key, for cache_ttl
	ttl     time.Duration
}

func newAuditHasher(s AuditSettings, vault vaultclient.Vault, timeout time.Duration, runCtx context.Context, size int, ttl time.Duration) *auditHasher {
	return &auditHasher{s: s, vault: vault, timeout: timeout, runCtx: runCtx, hashed: newExpiringCache[string](size), ttl: ttl}
}

// stamp returns id with its credential's HMAC, and the expiry to cache the
// verdict until (credentialExpiry, or sooner when stamped without). A nil
// hasher (no server.audit) stamps nothing.
func (h *auditHasher) stamp(ctx context.Context, key Key, credential string, id *identity.Identity, credentialExpiry time.Time) (*identity.Identity, time.Time, error) {
	if h == nil {
		return id, credentialExpiry, nil
	}
	hmac, err := h.hmac(ctx, key, credential)
	switch {
	case err == nil:
		return id.With(identity.Attribute{Key: identity.CredentialHMAC, Value: hmac}), credentialExpiry, nil
	case errors.Is(err, errRequestEnded):
		return nil, time.Time{}, unavailable(ReasonRequestExpired, err)
	case h.s.OnFailure == AuditStampWithout:
		soon := time.Now().Add(auditRetryAfter)
		if credentialExpiry.IsZero() || soon.Before(credentialExpiry) {
			credentialExpiry = soon
		}
		return id, credentialExpiry, nil
	case h.s.OnFailure == AuditRefuse:
		return nil, time.Time{}, refused(ReasonAuditUnavail, "%v", err)
	default:
		return nil, time.Time{}, unavailable(ReasonAuditUnavail, err)
	}
}

var errRequestEnded = errors.New("the request ended before Vault hashed its credential; the hash goes on")

func (h *auditHasher) hmac(ctx context.Context, key Key, credential string) (string, error) {
	if v, ok := h.hashed.get(key, time.Now().UnixNano()); ok {
		return v, nil
	}
	ch := h.flights.DoChan(string(key[:]), func() (any, error) {
		select {
		case <-h.vault.LoggedIn():
		default:
			return "", errors.New("not logged in to Vault yet")
		}
		ctx, cancel := context.WithTimeout(h.runCtx, h.timeout)
		defer cancel()
		v, err := vaultclient.AuditHash(ctx, h.vault, h.s.Device, credential)
		if err != nil {
			if isForbidden(err) {
				h.vault.RequestLogin()
			}
			return "", err
		}
		now := time.Now()
		h.hashed.put(key, v, now.Add(h.ttl).UnixNano(), now.UnixNano())
		return v, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", errRequestEnded
	}
}

func isForbidden(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}
