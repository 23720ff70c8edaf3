package vaultclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/ratelimit"
)

// SecretConfig names one field of one secret by its raw API path.
type SecretConfig struct {
	// Path is the raw API path: secret/data/x for KV v2, kv/x for KV v1, or
	// any engine's read path (leased secrets too).
	Path string `mapstructure:"path"`
	// Key is the field in data (in data.data for KV v2).
	Key string `mapstructure:"key"`
	// TTLField, when set, names a field holding the value's lifetime in
	// seconds, for responses that carry it in data rather than as a lease
	// (identity/oidc/token/<role> answers {token, ttl}). Not user config.
	TTLField string `mapstructure:"-"`

	_ struct{}
}

// Validate checks the `secret:` block.
func (c *SecretConfig) Validate() error {
	var errs []error
	if strings.Trim(c.Path, "/") == "" {
		errs = append(errs, errors.New("path: required"))
	}
	if c.Key == "" {
		errs = append(errs, errors.New("key: required"))
	}
	return errors.Join(errs...)
}

// Value is one read of the secret's field.
type Value struct {
	Data    string    // the field's value: never log it
	Version int       // KV v2 version, 0 for other engines
	Expires time.Time // end of the lease; zero when the value does not expire
	Created time.Time // when the KV v2 version was written; zero for other engines
	// RequestID is Vault's request id of the read: its audit log entry.
	RequestID string
	// RotatedBy and Reason are what `vaultlightstep rotate` wrote beside
	// the token in this version (RotatedByKey, RotationReasonKey).
	RotatedBy, Reason string
}

// Same says whether two reads hold the same value, whatever request read them.
func (v Value) Same(o Value) bool {
	v.RequestID = o.RequestID
	return v == o
}

// The keys `vaultlightstep rotate` writes beside the token in each version:
// who rotated (its Vault entity id) and why. Each version's own data, so the
// provenance of every version stays readable.
const (
	RotatedByKey      = "rotated_by_entity_id"
	RotationReasonKey = "rotation_reason"
)

// forcedRefreshEvery limits RefreshNow, so a backend rejecting every request
// cannot turn into a flood of Vault reads.
const forcedRefreshEvery = 10 * time.Second

// SecretWatcher reads a secret once logged in and keeps it current: KV v2
// versions are detected by polling metadata every interval, leased secrets
// are re-read at two thirds of their lease, and a read that fails keeps the
// last good value until its lease really ends.
type SecretWatcher struct {
	vault    Vault
	retry    RetryConfig
	cfg      SecretConfig
	path     string
	interval time.Duration
	onChange func(Value) // a new value, or the zero Value when the last one expired
	state    *stateLog
	logger   *zap.Logger

	refresh chan struct{}
	forced  ratelimit.Every // RefreshNow, at most once per forcedRefreshEvery
}

// NewSecretWatcher prepares a watcher; Run does the work. onChange is called
// from Run's goroutine.
func NewSecretWatcher(vault Vault, retry RetryConfig, cfg SecretConfig, interval time.Duration, logger *zap.Logger, report Reporter, onChange func(Value)) *SecretWatcher {
	return &SecretWatcher{
		vault:    vault,
		retry:    retry,
		cfg:      cfg,
		path:     strings.Trim(cfg.Path, "/"),
		interval: interval,
		onChange: onChange,
		logger:   logger,
		state:    newStateLog("secret read", logger, report),
		refresh:  make(chan struct{}, 1),
	}
}

// RefreshNow asks for a full re-read soon, e.g. after the backend rejected the
// current value. At most one is honoured per forcedRefreshEvery; it does no I/O.
func (w *SecretWatcher) RefreshNow() {
	if !w.forced.Allow(forcedRefreshEvery) {
		return
	}
	select {
	case w.refresh <- struct{}{}:
	default:
	}
}

// Run keeps the value current until ctx ends.
func (w *SecretWatcher) Run(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-w.vault.LoggedIn():
	}
	var (
		current Value
		kv2     bool
		b       = NewBackoff(w.retry)
		expiry  = time.NewTimer(time.Hour)
	)
	expiry.Stop()
	defer expiry.Stop()

	fullRead := true
	for {
		if fullRead {
			v, isKV2, err := w.read(ctx)
			if err != nil {
				w.failed(err)
				// A secret not there yet is looked for again every interval
				// (its writer may add it any time), not at a growing backoff.
				delay := b.Delay()
				if IsMissing(err) {
					delay = min(delay, w.interval)
				}
				if !w.sleep(ctx, delay, expiry, &current) {
					return
				}
				continue
			}
			b.Reset()
			w.state.ok()
			kv2 = isKV2
			w.use(v, &current, expiry)
		}
		if !w.sleep(ctx, w.nextRead(current), expiry, &current) {
			return
		}
		fullRead = !kv2 || !current.Expires.IsZero() || w.newVersion(ctx, current.Version)
	}
}

// use takes a value read: a new one is handed on, and its lease end armed.
func (w *SecretWatcher) use(v Value, current *Value, expiry *time.Timer) {
	if !v.Same(*current) {
		first, changed := current.Data == "", current.Data != "" && v.Data != current.Data
		*current = v
		w.onChange(v)
		// Which Vault request gave this collector the value it now sends
		// (its audit log entry), and who wrote that version and why.
		fields := []zap.Field{zap.String("path", w.path), zap.Int("version", v.Version),
			zap.String("vault_request_id", v.RequestID), zap.String("rotated_by", v.RotatedBy), zap.String("rotation_reason", v.Reason)}
		switch {
		case first:
			w.logger.Info("Vault secret read; value in use", fields...)
		case changed:
			w.logger.Info("Vault secret changed; new value in use", fields...)
		}
	}
	if !v.Expires.IsZero() {
		expiry.Reset(time.Until(v.Expires))
	}
}

// newVersion checks KV v2 metadata, the cheap check, and says whether the
// data must be read: a version other than the one in use, or metadata it
// may not read (no read on metadata in the policy: read the data).
func (w *SecretWatcher) newVersion(ctx context.Context, inUse int) bool {
	version, err := w.currentVersion(ctx)
	switch {
	case errors.Is(err, ErrVersionDeleted):
		w.failed(fmt.Errorf("%w; sending the last good value", err)) // keep sending it, but say so
		return false
	case err == nil:
		if version == inUse {
			w.state.ok() // Vault answers and nothing changed: healthy
		}
		return version != inUse
	case isStatus(err, http.StatusForbidden), isStatus(err, http.StatusNotFound):
		return true
	default:
		w.failed(err)
		return true
	}
}

// sleep waits d, or a forced refresh, or the lease end of the current value
// (which it clears). It reports whether ctx is still alive.
func (w *SecretWatcher) sleep(ctx context.Context, d time.Duration, expiry *time.Timer, current *Value) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-w.refresh:
			return true
		case <-expiry.C:
			w.logger.Warn("Vault secret lease ended before it could be read again; no credential until Vault answers",
				zap.String("path", w.path))
			*current = Value{}
			w.onChange(Value{})
		}
	}
}

// nextRead is when to read again: every interval for a value without a
// lifetime (polling for new versions), at two thirds of the remaining
// lifetime otherwise (a lease or an identity token: each read makes a new one).
func (w *SecretWatcher) nextRead(v Value) time.Duration {
	if v.Expires.IsZero() {
		return w.interval
	}
	return max(minReread, time.Until(v.Expires)*2/3)
}

func (w *SecretWatcher) failed(err error) {
	if isStatus(err, http.StatusForbidden) {
		w.vault.RequestLogin() // the token may have been revoked
	}
	w.state.failed(err)
}

// read reads the secret and extracts the field. Errors name the path and the
// key, never the value.
func (w *SecretWatcher) read(ctx context.Context) (Value, bool, error) {
	readAt := time.Now()
	sec, err := w.vault.ReadWithContext(ctx, w.path)
	if err != nil {
		if (isStatus(err, http.StatusForbidden) || isStatus(err, http.StatusNotFound)) && !strings.Contains(w.path, "/data/") {
			mount, rest, _ := strings.Cut(w.path, "/")
			return Value{}, false, fmt.Errorf("read %s: %w (if %s/ is a KV v2 mount, the API path is %s/data/%s)", w.path, err, mount, mount, rest)
		}
		return Value{}, false, fmt.Errorf("read %s: %w", w.path, err)
	}
	if hint := kv2PathHint(sec, w.path); hint != "" {
		return Value{}, false, fmt.Errorf("read %s: %s", w.path, hint)
	}
	v, kv2, err := decodeSecret(sec, w.cfg, readAt)
	if err != nil {
		return Value{}, kv2, fmt.Errorf("read %s: %w", w.path, err)
	}
	return v, kv2, nil
}

// decodeSecret extracts the configured field from a read response (KV v2,
// KV v1, or any engine's) and says whether it was KV v2. Errors name the key,
// never a value.
func decodeSecret(sec *api.Secret, cfg SecretConfig, readAt time.Time) (Value, bool, error) {
	if sec == nil {
		return Value{}, false, ErrNoSecret
	}
	data := sec.Data
	var v Value
	kv2 := false
	if meta, ok := data["metadata"].(map[string]any); ok {
		if _, hasData := data["data"]; hasData {
			kv2 = true
			v.Version = jsonInt(meta["version"])
			if created, ok := meta["created_time"].(string); ok {
				v.Created, _ = time.Parse(time.RFC3339Nano, created)
			}
			inner, ok := data["data"].(map[string]any)
			if !ok {
				return Value{}, kv2, missing(fmt.Sprintf("version %d has no data (deleted or destroyed)", v.Version))
			}
			data = inner
		}
	}
	raw, ok := data[cfg.Key]
	if !ok {
		return Value{}, kv2, missing(fmt.Sprintf("no key %q in the secret", cfg.Key))
	}
	s, ok := raw.(string)
	if !ok || s == "" {
		return Value{}, kv2, fmt.Errorf("key %q is not a non-empty string", cfg.Key)
	}
	v.Data = s
	v.RequestID = sec.RequestID
	v.RotatedBy, _ = data[RotatedByKey].(string)
	v.Reason, _ = data[RotationReasonKey].(string)
	switch {
	case sec.LeaseID != "" && sec.LeaseDuration > 0:
		v.Expires = readAt.Add(lifetime(sec.LeaseDuration))
	case cfg.TTLField != "":
		if ttl := jsonInt(data[cfg.TTLField]); ttl > 0 {
			v.Expires = readAt.Add(lifetime(ttl))
		}
	}
	return v, kv2, nil
}

// ErrNoSecret says the path holds no value for the key: no secret there, a
// deleted version, or no such key.
var ErrNoSecret = errors.New("no secret at this path")

// missing is an error that says what is missing and is ErrNoSecret.
type missing string

func (m missing) Error() string        { return string(m) }
func (m missing) Is(target error) bool { return target == ErrNoSecret }

// IsMissing says whether err means the secret is not there for this token
// (none at the path, no such key, or not readable by its policy), rather
// than that Vault could not be asked.
func IsMissing(err error) bool {
	return IsAbsent(err) || isStatus(err, http.StatusForbidden)
}

// IsAbsent says whether Vault answered that the secret or its key does not
// exist: no secret at the path (404), a deleted or destroyed version, no
// such key. A 403 is not absence: the token may have been revoked, or its
// policy may not cover the path, and the secret may well be there.
func IsAbsent(err error) bool {
	return errors.Is(err, ErrNoSecret) || isStatus(err, http.StatusNotFound)
}

// kv2PathHint explains Vault's answer to a KV v2 path read without /data/:
// a 404 whose only content is a warning, which the API client returns as a
// secret without data (and which would otherwise surface as "no key").
func kv2PathHint(sec *api.Secret, path string) string {
	if sec == nil || sec.Data != nil {
		return ""
	}
	for _, w := range sec.Warnings {
		if strings.Contains(w, "Invalid path for a versioned K/V secrets engine") {
			mount, rest, _ := strings.Cut(path, "/")
			return fmt.Sprintf("this is a KV v2 mount: its API path needs /data/ after the mount, e.g. %s/data/%s "+
				"(and %s/metadata/%s for version checks)", mount, rest, mount, rest)
		}
	}
	return ""
}

// currentVersion reads the KV v2 metadata of the secret: its current
// version, or ErrVersionDeleted when that version is deleted or destroyed.
func (w *SecretWatcher) currentVersion(ctx context.Context) (int, error) {
	p, err := ParseKVPath(w.path)
	if err != nil {
		return 0, fmt.Errorf("%s is not a KV v2 data path", w.path)
	}
	version, err := CurrentVersion(ctx, w.vault, p)
	if errors.Is(err, ErrNoSecret) {
		// No secret to watch the versions of: as Vault's 404, which falls
		// back to reading the data.
		return 0, fmt.Errorf("%w: %w", err, &api.ResponseError{StatusCode: http.StatusNotFound})
	}
	return version, err
}

// maxLifetime caps lease durations and TTLs from responses, so no value can
// overflow a time.Duration into an expiry in the past.
const maxLifetime = 10 * 365 * 24 * time.Hour

func lifetime(seconds int) time.Duration {
	if seconds <= 0 || int64(seconds) > int64(maxLifetime/time.Second) {
		return maxLifetime
	}
	return time.Duration(seconds) * time.Second
}

// minReread keeps a very short lease from turning into a busy loop of reads.
const minReread = 100 * time.Millisecond

func jsonInt(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	}
	return 0
}

func isStatus(err error, code int) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}
