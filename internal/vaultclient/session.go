package vaultclient

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// Session keeps a Vault client logged in: it logs in with the configured
// method, renews the token with api.LifetimeWatcher, and logs in again (with
// backoff) when renewal ends, when asked to (a request saw 403), or when the
// token file changes.
type Session struct {
	client *api.Client
	cfg    AuthConfig
	retry  RetryConfig
	state  *stateLog
	logger *zap.Logger

	reauth   chan struct{}
	loggedIn chan struct{} // closed after the first successful login
	once     sync.Once

	self atomic.Pointer[identity.Identity] // set by resolveIdentity after each login
}

// NewSession prepares a session; Run does the work.
func NewSession(client *api.Client, cfg AuthConfig, retry RetryConfig, logger *zap.Logger, report Reporter) *Session {
	return &Session{
		client:   client,
		cfg:      cfg,
		retry:    retry,
		logger:   logger,
		state:    newStateLog("login", logger, report),
		reauth:   make(chan struct{}, 1),
		loggedIn: make(chan struct{}),
	}
}

// Client is the logged-in client; its token changes under it as the session
// renews and logs in again. Safe for concurrent use.
func (s *Session) Client() *api.Client { return s.client }

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

// Run logs in and keeps the token valid until ctx ends.
func (s *Session) Run(ctx context.Context) {
	b := newBackoff(s.retry)
	for ctx.Err() == nil {
		sec, err := login(ctx, s.client, s.cfg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.state.failed(err)
			b.wait(ctx)
			continue
		}
		b.reset()
		s.client.SetToken(sec.Auth.ClientToken)
		s.resolveIdentity(ctx)
		s.state.ok()
		s.once.Do(func() { close(s.loggedIn) })
		s.logger.Debug("Vault login succeeded",
			zap.String("method", s.cfg.Method),
			zap.Duration("ttl", time.Duration(sec.Auth.LeaseDuration)*time.Second),
			zap.Bool("renewable", sec.Auth.Renewable))

		s.keepAlive(ctx, sec)
	}
}

// keepAlive returns when the token must be replaced (or ctx ends).
func (s *Session) keepAlive(ctx context.Context, sec *api.Secret) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var changed <-chan struct{}
	if s.cfg.TokenFile != "" {
		changed = watchFile(ctx, s.cfg.TokenFile, sec.Auth.ClientToken, s.cfg.TokenFilePollInterval)
	}
	// A token file is renewed by whoever writes it (Vault Agent); a token
	// that is not renewable or has no TTL (root) needs no renewal.
	var (
		done    <-chan error
		renewed <-chan *api.RenewOutput
	)
	if s.cfg.TokenFile == "" && sec.Auth.Renewable && sec.Auth.LeaseDuration > 0 {
		w, err := s.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: sec})
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
				s.logger.Debug("Vault token renewed",
					zap.Duration("ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second))
			}
		case <-changed:
			s.logger.Info("Vault token file changed; using the new token", zap.String("token_file", s.cfg.TokenFile))
			return
		case <-s.reauth:
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
