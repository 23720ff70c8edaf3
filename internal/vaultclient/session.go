package vaultclient

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
)

// Session keeps a Vault client logged in: it logs in with the configured
// method, renews the token with api.LifetimeWatcher, and logs in again (with
// backoff) when renewal ends, when asked to (a request saw 403), or when the
// token file changes. It implements Vault, the seam the components use.
type Session struct {
	client    *api.Client
	cfg       AuthConfig
	retry     RetryConfig
	timeout   time.Duration
	namespace string // configured namespace path, for this collector's identity
	// auditDevice hashes this collector's token for vault.credential.hmac.
	auditDevice string
	events      *auditevent.Bus // logins, for the vaultaudit receiver (nil: none)
	component   string
	state       *stateLog
	logger      *zap.Logger

	reauth   chan struct{}
	loggedIn chan struct{} // closed after the first successful login
	once     sync.Once

	current atomic.Pointer[loginResult] // the login in use
	expires atomic.Int64                // unix nanos when the token expires; 0 if never (root) or unknown
	self    *selfIdentity
}

var _ Vault = (*Session)(nil)

// NewSession prepares a session; Run does the work.
func NewSession(client *api.Client, cfg AuthConfig, vault VaultConfig, logger *zap.Logger, report Reporter) *Session {
	s := &Session{
		client:    client,
		cfg:       cfg,
		retry:     vault.Retry,
		timeout:   vault.Timeout,
		namespace: vault.ResolvedNamespace(),
		logger:    logger,
		state:     newStateLog("login", logger, report),
		reauth:    make(chan struct{}, 1),
		loggedIn:  make(chan struct{}),
	}
	s.self = newSelfIdentity(s)
	return s
}

// Audit makes the session hash its token with device when a consumer stamps
// vault.credential.hmac, and tell events about each login, as component.
// Call before Run.
func (s *Session) Audit(device string, events *auditevent.Bus, component string) {
	s.auditDevice, s.events, s.component = device, events, component
}

// ReadWithContext reads a path with the session's token (Logical).
func (s *Session) ReadWithContext(ctx context.Context, path string) (*api.Secret, error) {
	return s.client.Logical().ReadWithContext(ctx, path)
}

// WriteWithContext writes a path with the session's token (Logical).
func (s *Session) WriteWithContext(ctx context.Context, path string, data map[string]any) (*api.Secret, error) {
	return s.client.Logical().WriteWithContext(ctx, path, data)
}

// LoggedIn is closed once the first login has succeeded.
func (s *Session) LoggedIn() <-chan struct{} { return s.loggedIn }

// RequestLogin asks for a new login soon, e.g. after Vault answered 403 to a
// request made with the current token. Extra requests while one is pending
// are merged.
func (s *Session) RequestLogin() {
	select {
	case s.reauth <- struct{}{}:
	default:
	}
}

// TokenExpiry is when the token in use expires (zero when it does not, or
// before the first login). No I/O.
func (s *Session) TokenExpiry() time.Time {
	if n := s.expires.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Run logs in and keeps the token valid until ctx ends.
func (s *Session) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); s.self.run(ctx) }()

	b := NewBackoff(s.retry)
	for ctx.Err() == nil {
		res, err := login(ctx, s.client, s.cfg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.state.failed(err)
			b.Wait(ctx)
			continue
		}
		b.Reset()
		if res.token != "" {
			s.client.SetToken(res.token)
		}
		first := s.current.Load() == nil
		s.setLogin(&res)
		s.state.ok()
		s.once.Do(func() { close(s.loggedIn) })
		s.logger.Info("Vault login succeeded", zap.String("method", s.cfg.Method), zap.String("entity_id", res.entityID),
			zap.Duration("ttl", res.ttl), zap.Bool("renewable", res.renewable), zap.String("vault_request_id", res.requestID))
		s.emitLogin(&res, first)

		s.keepAlive(ctx, &res)
	}
}

// emitLogin tells the audit events about a login: its Vault request id is
// the audit entry that issued this collector's token.
func (s *Session) emitLogin(res *loginResult, first bool) {
	if s.events == nil || !s.events.Active() {
		return
	}
	kind := "again"
	if first {
		kind = "first"
	}
	s.events.Emit(auditevent.Event{Name: auditevent.Login, Attrs: []auditevent.Attr{
		auditevent.String(auditevent.Component, s.component),
		auditevent.String(auditevent.AuthMethod, s.cfg.Method),
		auditevent.String(auditevent.LoginKind, kind),
		auditevent.String("vault.entity.id", res.entityID),
		auditevent.String(auditevent.RequestID, res.requestID),
		auditevent.Int(auditevent.TokenTTL, int64(res.ttl/time.Second)),
	}})
}

func (s *Session) setLogin(res *loginResult) {
	s.current.Store(res)
	s.setExpiry(res.ttl)
	s.self.loggedIn(res)
}

func (s *Session) setExpiry(ttl time.Duration) {
	if ttl <= 0 {
		s.expires.Store(0)
		return
	}
	s.expires.Store(time.Now().Add(ttl).UnixNano())
}

// keepAlive returns when the token must be replaced (or ctx ends).
func (s *Session) keepAlive(ctx context.Context, res *loginResult) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var changed <-chan struct{}
	if s.cfg.TokenFile != "" {
		changed = watchFile(ctx, s.cfg.TokenFile, res.token, s.cfg.TokenFilePollInterval)
	}
	// A token file is renewed by whoever writes it (Vault Agent), as is an
	// agent's own token; a token that is not renewable or has no TTL (root)
	// needs no renewal.
	var (
		done    <-chan error
		renewed <-chan *api.RenewOutput
	)
	if s.cfg.TokenFile == "" && res.auth != nil && res.renewable && res.ttl > 0 && res.ttl < maxLifetime {
		w, err := s.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: res.auth})
		if err == nil {
			go w.Start()
			defer w.Stop()
			done, renewed = w.DoneCh(), w.RenewCh()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-renewed:
			if r.Secret != nil && r.Secret.Auth != nil {
				ttl := time.Duration(r.Secret.Auth.LeaseDuration) * time.Second
				s.setExpiry(ttl)
				s.logger.Info("Vault token renewed", zap.Duration("ttl", ttl), zap.String("vault_request_id", r.Secret.RequestID))
			}
		case <-changed:
			s.logger.Info("Vault token file changed; using the new token", zap.String("token_file", s.cfg.TokenFile))
			return
		case <-s.reauth:
			if s.cfg.Method == MethodAgent {
				continue // the agent owns the token: nothing to log in with
			}
			// Debug: a policy that keeps refusing would repeat this at every retry.
			s.logger.Debug("Vault rejected the current token; logging in again")
			return
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				s.logger.Info("Vault token renewal ended; logging in again", zap.Error(err))
			} else {
				s.logger.Debug("Vault token reached its maximum TTL; logging in again")
			}
			return
		}
	}
}
