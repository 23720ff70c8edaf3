package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/kube"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// Settings is what the server side is configured with (the `server` block,
// its rules parsed and its defaults applied).
type Settings struct {
	// Header carries the sender's credential; a "Bearer " prefix is stripped.
	Header            string
	MaxCredentialSize int
	CacheTTL          time.Duration
	CacheSize         int
	NegativeCacheTTL  time.Duration
	// Rules fill the identity's attributes beyond the entity id and namespace.
	Rules identity.Rules
	// TenantAttribute names the attribute that names the tenant; "" for none.
	TenantAttribute string
	// One of JWT (identity_token mode), Lookup (token_lookup mode) and
	// Pods (kubernetes_pods mode).
	JWT    *JWTSettings
	Lookup *LookupSettings
	Pods   *PodSettings
	// Audit stamps each identity with its credential's audit HMAC; nil: off.
	Audit *AuditSettings
}

// JWTSettings is the identity_token mode.
type JWTSettings struct {
	Issuers         []string // empty: the Vault's own
	Audience        string
	Leeway          time.Duration
	RefetchInterval time.Duration // least time between fetches caused by unknown key ids
	RefreshInterval time.Duration // fetch anyway this often
}

// LookupSettings is the token_lookup mode.
type LookupSettings struct {
	MaxConcurrent      int
	PerSecond          float64
	PerSecondPerClient float64
}

// verifier checks a credential not in the caches and records its verdict.
type verifier interface {
	verify(ctx context.Context, credential string, key Key, client string) (verdict, error)
}

// Authenticator verifies the Vault identity of each sender and puts it in
// client.Info.Auth. Verified and refused credentials are cached by hash, so
// a repeated credential costs a hash and a map read.
type Authenticator struct {
	s               Settings
	headerLower     string // gRPC metadata keys, and client.Metadata's
	headerCanonical string // HTTP header keys
	verdicts        *verdicts
	verifier        verifier   // set in Start
	pods            *podSender // kubernetes_pods: the sender is its connection's pod, set in Start
	refusals        *refusals
	telemetry       *telemetry.Telemetry
	logger          *zap.Logger
	events          *auditevent.Bus
	component       string
}

// New makes an authenticator; Start readies its verifier. Audit events go
// to events, naming component.
func New(s Settings, tel *telemetry.Telemetry, logger *zap.Logger, events *auditevent.Bus, component string) *Authenticator {
	return &Authenticator{
		s: s, headerLower: strings.ToLower(s.Header), headerCanonical: http.CanonicalHeaderKey(s.Header),
		verdicts: newVerdicts(s), refusals: newRefusals(logger, tel, auditevent.NewTally(events, component)),
		telemetry: tel, logger: logger, events: events, component: component,
	}
}

// Start readies the verifier of the configured mode: the issuers' key sets
// (fetched in the background by run), or lookups through vault. Work runs
// on runCtx, never on a request's.
func (a *Authenticator) Start(ctx, runCtx context.Context, vault vaultclient.Vault, vaultCfg vaultclient.VaultConfig, run func(func())) error {
	if err := a.registerGauge(); err != nil {
		return err
	}
	run(func() { a.refusals.tally.Run(runCtx, refusalEventEvery) })
	var tenant *tenantRule
	if a.s.TenantAttribute != "" {
		tenant = &tenantRule{attribute: a.s.TenantAttribute}
	}
	var audit *auditHasher
	if a.s.Audit != nil {
		audit = newAuditHasher(*a.s.Audit, vault, vaultCfg.Timeout, runCtx, a.s.CacheSize, a.s.CacheTTL)
	}
	if a.s.JWT != nil {
		hc, err := vaultclient.NewHTTPClient(ctx, vaultCfg)
		if err != nil {
			return err
		}
		j := newJWTVerifier(*a.s.JWT, a.s.Rules, tenant, a.verdicts, audit, vaultCfg, hc, a.logger)
		j.each(func(keys *jwks) { run(func() { keys.run(runCtx) }) })
		a.verifier = j
		return nil
	}
	if a.s.Pods != nil {
		return a.startPods(runCtx, vault, vaultCfg, tenant, run)
	}
	l := newLookupVerifier(vault, *a.s.Lookup, a.s.Rules, tenant, a.verdicts, audit, vaultCfg.Timeout, a.s.CacheTTL)
	l.runCtx = runCtx
	a.verifier = l
	return nil
}

// startPods starts the watch of this node's pods and readies the verifier
// that resolves their service accounts to Vault entities.
func (a *Authenticator) startPods(runCtx context.Context, vault vaultclient.Vault, vaultCfg vaultclient.VaultConfig,
	tenant *tenantRule, run func(func())) error {
	kc, err := kube.NewClient(a.s.Pods.AuthType)
	if err != nil {
		return fmt.Errorf("server.kubernetes_pods: %w", err)
	}
	index := kube.NewPodIndex(kc, a.s.Pods.NodeName)
	run(func() { index.Run(runCtx) })
	a.pods = &podSender{index: index}
	a.verifier = &podVerifier{vault: vault, s: *a.s.Pods, namespace: vaultCfg.Namespace, rules: a.s.Rules, tenant: tenant,
		verdicts: a.verdicts, timeout: vaultCfg.Timeout, runCtx: runCtx, kube: kc}
	return nil
}

func (a *Authenticator) registerGauge() error {
	accepted := metric.WithAttributeSet(a.telemetry.Attrs(attribute.String("outcome", "accepted")))
	refused := metric.WithAttributeSet(a.telemetry.Attrs(attribute.String("outcome", "refused")))
	return a.telemetry.RegisterVaultauthServerCachedCredentialsCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(int64(a.verdicts.accepted.len()), accepted)
		o.Observe(int64(a.verdicts.refused.len()), refused)
		return nil
	})
}

// Authenticate verifies the request's credential (extensionauth.Server).
func (a *Authenticator) Authenticate(ctx context.Context, sources map[string][]string) (context.Context, error) {
	credential, reason, temporary := a.credentialOf(ctx, sources)
	if reason != "" {
		return a.refuse(ctx, reason, "", temporary)
	}
	key := KeyOf(credential)
	now := time.Now().UnixNano()
	if v, ok := a.verdicts.accepted.get(key, now); ok {
		a.telemetry.Accepted(true)
		return a.withAuth(ctx, v), nil
	}
	if _, ok := a.verdicts.refused.get(key, now); ok {
		return a.refuse(ctx, ReasonCachedRefusal, "", false)
	}
	v, err := a.verifier.verify(ctx, credential, key, clientAddress(ctx))
	if err != nil {
		ve := verdictOf(err)
		return a.refuse(ctx, ve.reason, ve.detail, ve.temporary)
	}
	a.telemetry.Accepted(false)
	a.emitAccepted(ctx, v)
	return a.withAuth(ctx, v), nil
}

// refuse answers a request not accepted: Unavailable (the sender
// retries) when the cause is passing, Unauthenticated otherwise; or, on a
// node agent with unidentified: pass, accepted without an identity.
func (a *Authenticator) refuse(ctx context.Context, reason, detail string, temporary bool) (context.Context, error) {
	pass := a.s.Pods != nil && a.s.Pods.PassUnidentified && reason != ReasonPodsNotSynced
	switch {
	case pass && (!temporary || reason == kube.NoPod || reason == kube.Ambiguous):
		a.refusals.unidentified(ctx, reason, detail)
		return ctx, nil
	case temporary:
		a.refusals.unavailable(ctx, reason, detail)
		return ctx, ErrUnavailable
	}
	a.refusals.refused(ctx, reason, detail)
	return ctx, ErrUnauthenticated
}

// withAuth puts a verdict in a request's context: the identity in
// client.Info.Auth, and in client.Info.Metadata its tenant (replacing any
// value there) and not the credential (identity.VerifiedMetadata).
func (a *Authenticator) withAuth(ctx context.Context, v verdict) context.Context {
	info := client.FromContext(ctx)
	info.Auth = v.auth
	info.Metadata = identity.VerifiedMetadata(info.Metadata, v.tenant, v.metadata, a.headerLower)
	return client.NewContext(ctx, info)
}

// credentialOf is what identifies the request's sender: its credential,
// or with kubernetes_pods its connection's pod's service account.
func (a *Authenticator) credentialOf(ctx context.Context, sources map[string][]string) (string, string, bool) {
	if a.pods != nil {
		return a.pods.credential(ctx)
	}
	c, reason := a.credential(sources)
	return c, reason, false
}

// credential extracts the one credential of a request, or says why not.
func (a *Authenticator) credential(sources map[string][]string) (string, string) {
	values, ok := sources[a.headerLower]
	if !ok {
		values, ok = sources[a.headerCanonical]
	}
	switch {
	case !ok || len(values) == 0:
		return "", ReasonNoCredential
	case len(values) > 1:
		return "", ReasonMultiple
	}
	v := values[0]
	if len(v) > a.s.MaxCredentialSize {
		return "", ReasonOversized
	}
	if len(v) >= 7 && strings.EqualFold(v[:7], "bearer ") {
		v = v[7:]
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", ReasonNoCredential
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

// emitAccepted tells the audit events about a credential this gateway has
// just verified (not one answered from the cache): the identity, with its
// credential's HMAC, and what the credential says of itself.
func (a *Authenticator) emitAccepted(ctx context.Context, v verdict) {
	if !a.events.Active() {
		return
	}
	id := v.auth.(identity.AuthData).Identity
	attrs := make([]auditevent.Attr, 0, len(id.Attributes())+6)
	attrs = append(attrs, auditevent.String(auditevent.Component, a.component))
	for _, at := range id.Attributes() {
		attrs = append(attrs, auditevent.String(at.Key, at.Value))
	}
	if peer := clientAddress(ctx); peer != "" {
		attrs = append(attrs, auditevent.String(auditevent.ClientAddress, peer))
	}
	if ab := v.about; ab != nil {
		attrs = append(attrs, auditevent.String(auditevent.CredentialKind, ab.kind))
		if !ab.expires.IsZero() {
			attrs = append(attrs, auditevent.String(auditevent.CredentialExpiry, ab.expires.UTC().Format(time.RFC3339)))
		}
		if ab.issuer != "" {
			attrs = append(attrs, auditevent.String(auditevent.TokenIssuer, ab.issuer), auditevent.String(auditevent.TokenKeyID, ab.keyID))
		}
		if len(ab.policies) > 0 {
			if _, ok := id.Get(identity.Policies); !ok {
				attrs = append(attrs, auditevent.String(identity.Policies, strings.Join(ab.policies, ",")))
			}
		}
	}
	a.events.Emit(auditevent.Event{Name: auditevent.CredentialAccepted, Attrs: attrs})
}
