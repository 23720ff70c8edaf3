package vaultauthextension

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// serverAuth is a receiver authenticator: it verifies the Vault identity of
// each sender and puts it in client.Info.Auth. Verified and refused
// credentials are cached by hash, so a repeated credential costs a hash and
// a map read.
type serverAuth struct {
	*vaultLink
	cfg             *ServerConfig
	headerLower     string // gRPC metadata keys
	headerCanonical string // HTTP header keys
	verdicts        *verdicts
	verifier        verifier // set in Start
}

// verifier checks a credential not in the caches and records its verdict.
type verifier interface {
	verify(ctx context.Context, credential string, key credentialKey, client string) (verdict, error)
}

var _ extensionauth.Server = (*serverAuth)(nil)

func newServerAuth(link *vaultLink, cfg *ServerConfig) *serverAuth {
	return &serverAuth{
		vaultLink:       link,
		cfg:             cfg,
		headerLower:     strings.ToLower(cfg.Header),
		headerCanonical: http.CanonicalHeaderKey(cfg.Header),
		verdicts:        newVerdicts(cfg),
	}
}

func (s *serverAuth) Start(ctx context.Context, host component.Host) error {
	rules, err := s.cfg.rules()
	if err != nil {
		return err // Validate has said so already
	}
	var tenant *tenantRule
	if s.cfg.Tenant.HasValue() {
		tenant = &tenantRule{attribute: s.cfg.Tenant.Get().Attribute}
	}
	return s.start(ctx, host, func(runCtx context.Context) error {
		accepted := metric.WithAttributeSet(s.telemetry.attrs(attribute.String("outcome", "accepted")))
		refused := metric.WithAttributeSet(s.telemetry.attrs(attribute.String("outcome", "refused")))
		if err := s.telemetry.RegisterVaultauthServerCachedCredentialsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(s.verdicts.accepted.len()), accepted)
			o.Observe(int64(s.verdicts.refused.len()), refused)
			return nil
		}); err != nil {
			return err
		}
		if s.cfg.IdentityToken.HasValue() {
			hc, err := vaultclient.NewHTTPClient(ctx, s.conf.Vault)
			if err != nil {
				return err
			}
			j := newJWTVerifier(*s.cfg.IdentityToken.Get(), rules, tenant, s.verdicts, s.conf.Vault, hc, s.logger)
			j.each(func(keys *jwks) { s.run(func() { keys.run(runCtx) }) })
			s.verifier = j
			return nil
		}
		l := newLookupVerifier(s.vault, *s.cfg.TokenLookup.Get(), rules, tenant, s.verdicts, s.conf.Vault.Timeout, s.cfg.CacheTTL)
		l.runCtx = runCtx
		s.verifier = l
		return nil
	})
}

func (s *serverAuth) Authenticate(ctx context.Context, sources map[string][]string) (context.Context, error) {
	credential, reason := s.credential(sources)
	if reason != "" {
		s.refusals.refused(reason, "")
		return ctx, errUnauthenticated
	}
	key := keyOf(credential)
	now := time.Now().UnixNano()
	if v, ok := s.verdicts.accepted.get(key, now); ok {
		s.telemetry.accepted(true)
		return withAuth(ctx, v, s.headerLower), nil
	}
	if _, ok := s.verdicts.refused.get(key, now); ok {
		s.refusals.refused(reasonCachedRefusal, "")
		return ctx, errUnauthenticated
	}
	v, err := s.verifier.verify(ctx, credential, key, clientAddress(ctx))
	if err != nil {
		ve := verdictOf(err)
		if ve.temporary {
			s.refusals.unavailable(ve.reason, ve.detail)
			return ctx, errVerifierUnavailable
		}
		s.refusals.refused(ve.reason, ve.detail)
		return ctx, errUnauthenticated
	}
	s.telemetry.accepted(false)
	return withAuth(ctx, v, s.headerLower), nil
}

// credential extracts the one credential of a request, or says why not.
func (s *serverAuth) credential(sources map[string][]string) (string, string) {
	values, ok := sources[s.headerLower]
	if !ok {
		values, ok = sources[s.headerCanonical]
	}
	switch {
	case !ok || len(values) == 0:
		return "", reasonNoCredential
	case len(values) > 1:
		return "", reasonMultiple
	}
	v := values[0]
	if len(v) > s.cfg.MaxCredentialSize {
		return "", reasonOversized
	}
	if len(v) >= 7 && strings.EqualFold(v[:7], "bearer ") {
		v = v[7:]
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", reasonNoCredential
	}
	return v, ""
}

// clientAddress is the sender's IP address, which lookup budgets are kept
// per ("" when the receiver did not say).
func clientAddress(ctx context.Context) string {
	switch a := client.FromContext(ctx).Addr.(type) {
	case nil:
		return ""
	case *net.TCPAddr:
		return a.IP.String()
	case *net.IPAddr:
		return a.IP.String()
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		return host
	}
}
