package vaultauthextension

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// What a sender is told. Receivers copy an authenticator's error into the
// response, so these say nothing that helps an attacker; the reason is
// logged at debug level.
var (
	errUnauthenticated = errors.New("unauthenticated")
	// Not the sender's fault (Vault or its keys unreachable): gRPC senders
	// retry Unavailable instead of dropping their data.
	errVerifierUnavailable = status.Error(codes.Unavailable, "authentication temporarily unavailable")
)

// serverAuth verifies the Vault identity of each sender and puts it in
// client.Info.Auth. Verified and rejected credentials are cached by hash, so
// a repeated credential costs a hash and a map read.
type serverAuth struct {
	cfg             *ServerConfig
	headerLower     string // gRPC metadata keys
	headerCanonical string // HTTP header keys
	logger          *zap.Logger

	accepted *verdictCache
	rejected *verdictCache // separate, so garbage cannot evict valid senders

	jwt    *jwtVerifier    // identity_token mode
	lookup *lookupVerifier // token_lookup mode
}

func newServerAuth(cfg *ServerConfig, logger *zap.Logger) *serverAuth {
	return &serverAuth{
		cfg:             cfg,
		headerLower:     strings.ToLower(cfg.Header),
		headerCanonical: http.CanonicalHeaderKey(cfg.Header),
		logger:          logger,
		accepted:        newVerdictCache(cfg.CacheSize),
		rejected:        newVerdictCache(cfg.CacheSize),
	}
}

func (s *serverAuth) Authenticate(ctx context.Context, sources map[string][]string) (context.Context, error) {
	credential, reason := s.credential(sources)
	if reason != "" {
		s.logger.Debug("rejected a request: "+reason, zap.String("header", s.cfg.Header))
		return ctx, errUnauthenticated
	}
	key := keyOf(credential)
	now := time.Now()
	nowNano := now.UnixNano()
	if v, ok := s.accepted.get(key, nowNano); ok {
		return withAuth(ctx, v.auth), nil
	}
	if _, ok := s.rejected.get(key, nowNano); ok {
		return ctx, errUnauthenticated
	}

	var (
		id      *identity.Identity
		expires time.Time
		err     error
	)
	if s.jwt != nil {
		id, expires, err = s.jwt.verify(ctx, credential)
	} else {
		id, expires, err = s.lookup.verify(ctx, credential, key)
	}
	if err != nil {
		var ve *verdictError
		if errors.As(err, &ve) && ve.temporary {
			s.logger.Debug("could not verify a credential", zap.String("reason", ve.reason))
			return ctx, errVerifierUnavailable
		}
		s.logger.Debug("rejected a credential", zap.Error(err))
		if s.cfg.NegativeCacheTTL > 0 {
			s.rejected.put(key, verdict{expires: now.Add(s.cfg.NegativeCacheTTL).UnixNano()}, nowNano)
		}
		return ctx, errUnauthenticated
	}
	auth := identity.AuthData{Identity: id}
	s.accepted.put(key, verdict{auth: auth, expires: deadline(now, s.cfg.CacheTTL, expires)}, nowNano)
	return withAuth(ctx, auth), nil
}

// credential extracts the one credential of a request, or says why not.
func (s *serverAuth) credential(sources map[string][]string) (string, string) {
	values, ok := sources[s.headerLower]
	if !ok {
		values, ok = sources[s.headerCanonical]
	}
	switch {
	case !ok || len(values) == 0:
		return "", "no credential header"
	case len(values) > 1:
		return "", "more than one credential header"
	}
	v := values[0]
	if len(v) > s.cfg.MaxCredentialSize {
		return "", "credential larger than max_credential_size"
	}
	if len(v) >= 7 && strings.EqualFold(v[:7], "bearer ") {
		v = v[7:]
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", "empty credential"
	}
	return v, ""
}

func withAuth(ctx context.Context, auth client.AuthData) context.Context {
	info := client.FromContext(ctx)
	info.Auth = auth
	return client.NewContext(ctx, info)
}
