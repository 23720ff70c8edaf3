package vaultauthextension

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/server"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/kube"
)

// ServerConfig is the receiver side: how senders' Vault identities are verified.
type ServerConfig struct {
	// Header carries the sender's credential; a "Bearer " prefix is stripped.
	Header string `mapstructure:"header"`
	// IdentityToken verifies Vault identity JWTs locally against the JWKS.
	IdentityToken configoptional.Optional[IdentityTokenServerConfig] `mapstructure:"identity_token"`
	// TokenLookup checks Vault tokens with auth/token/lookup.
	TokenLookup configoptional.Optional[TokenLookupConfig] `mapstructure:"token_lookup"`
	// KubernetesPods identifies each sender, without a credential, as the
	// pod on this node its connection comes from: the Vault entity of that
	// pod's service account (node agents; docs/kubernetes.md).
	KubernetesPods configoptional.Optional[KubernetesPodsConfig] `mapstructure:"kubernetes_pods"`
	// Attributes are the identity attributes filled for each sender beyond
	// vault.entity.id and vault.namespace: attribute name -> source
	// (claim:<name>; entity:name, entity:metadata.<key>, entity:groups,
	// token:policies, token:meta.<key>). They are added to the mode's
	// defaults; an empty source removes a default.
	Attributes map[string]string `mapstructure:"attributes"`
	// Tenant routes each sender's data to the tenant one of its verified
	// attributes names (client.Info.Metadata key vault:tenant, attribute
	// vault.tenant). Off when absent.
	Tenant configoptional.Optional[TenantConfig] `mapstructure:"tenant"`
	// CacheTTL bounds how long a verified credential is trusted without a
	// new check; never beyond the credential's own expiry.
	CacheTTL time.Duration `mapstructure:"cache_ttl"`
	// CacheSize bounds the number of verified credentials remembered.
	CacheSize int `mapstructure:"cache_size"`
	// NegativeCacheTTL is how long a refused credential is refused without
	// a new check, so repeated garbage cannot load Vault. 0 turns it off.
	NegativeCacheTTL time.Duration `mapstructure:"negative_cache_ttl"`
	// MaxCredentialSize refuses larger credentials before any parsing.
	MaxCredentialSize int `mapstructure:"max_credential_size"`
	// Audit stamps each identity with its credential's Vault audit HMAC
	// (vault.credential.hmac). Off when absent.
	Audit configoptional.Optional[ServerAuditConfig] `mapstructure:"audit"`

	_ struct{}
}

// TenantMetadataKey is the client metadata key that carries a request's
// tenant from the receiver to the exporter, through batching
// (sending_queue.batch.partition.metadata_keys) and the persistent queue.
// No sender can send it: ':' is not allowed in an HTTP header or gRPC
// metadata name, so only the server side of vaultauth can set it.
const TenantMetadataKey = identity.TenantMetadataKey

// TenantConfig routes each sender's data to a tenant named by one of its
// verified identity attributes (the `server.tenant` block).
type TenantConfig struct {
	// Attribute is the verified attribute that names the tenant:
	// vault.namespace (Vault Enterprise), or one the attributes rules fill,
	// e.g. vault.entity.metadata.team from a token claim or entity metadata.
	Attribute string `mapstructure:"attribute"`

	_ struct{}
}

// Validate checks the `tenant:` block.
func (c *TenantConfig) Validate() error {
	if c.Attribute == "" {
		return errors.New("attribute: required (e.g. vault.namespace, or vault.entity.metadata.team filled by server.attributes)")
	}
	return nil
}

// IdentityTokenServerConfig is the identity JWT mode.
type IdentityTokenServerConfig struct {
	// Issuers accepted in `iss`, one per Vault namespace. Default:
	// <vault.address>/v1/<vault.namespace>/identity/oidc, or
	// <vault.address>/v1/identity/oidc without a namespace (root).
	Issuers []string `mapstructure:"issuers"`
	// Audience required in `aud`: the Vault OIDC role's client_id.
	Audience string `mapstructure:"audience"`
	// EntityNameClaim is the claim holding the entity name, put there by the
	// role's template: {"entity_name": {{identity.entity.name}}}. Sugar for
	// attributes: {vault.entity.name: claim:<entity_name_claim>}.
	EntityNameClaim string `mapstructure:"entity_name_claim"`
	// Leeway allowed on exp, nbf and iat for clock skew.
	Leeway time.Duration `mapstructure:"leeway"`
	// JWKSRefetchInterval is the least time between two JWKS fetches caused
	// by an unknown key id (after a key rotation).
	JWKSRefetchInterval time.Duration `mapstructure:"jwks_refetch_interval"`
	// JWKSRefreshInterval is how often the JWKS is fetched anyway, so a key
	// Vault no longer publishes stops verifying.
	JWKSRefreshInterval time.Duration `mapstructure:"jwks_refresh_interval"`

	_ struct{}
}

// Alias name sources of Vault's Kubernetes auth roles (alias_name_source).
const (
	AliasServiceAccountUID  = "serviceaccount_uid"
	AliasServiceAccountName = "serviceaccount_name"
)

// KubernetesPodsConfig is the pod association mode.
type KubernetesPodsConfig struct {
	// NodeName is this agent's node (the downward API's spec.nodeName):
	// only its pods are watched, and only they are vouched for.
	NodeName string `mapstructure:"node_name"`
	// AuthType is how the API server is reached: serviceAccount (in the
	// cluster) or kubeConfig ($KUBECONFIG).
	AuthType string `mapstructure:"auth_type"`
	// MountPath is the Vault Kubernetes auth mount whose aliases name the
	// service accounts' entities.
	MountPath string `mapstructure:"mount_path"`
	// AliasNameSource is how that mount's roles name aliases:
	// serviceaccount_uid (Vault's default; needs get on serviceaccounts)
	// or serviceaccount_name (<namespace>/<name>).
	AliasNameSource string `mapstructure:"alias_name_source"`
	// Unidentified is what happens to a sender whose pod gives no identity
	// (no pod of this node has its address, a host-network or terminating
	// pod, a service account without a Vault entity): reject (refused,
	// the default) or pass (accepted without an identity: with the
	// agent's vaultidentity on_missing: pass, the gateway stamps the
	// agent's own identity, as an agent without this mode does).
	Unidentified string `mapstructure:"unidentified"`

	_ struct{}
}

// What happens to senders a node agent cannot identify.
const (
	UnidentifiedReject = "reject"
	UnidentifiedPass   = "pass"
)

// Validate checks the `kubernetes_pods:` block.
func (c *KubernetesPodsConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(c.NodeName) == "" {
		errs = append(errs, errors.New("node_name: required (the downward API's spec.nodeName, e.g. ${env:NODE_NAME})"))
	}
	if c.AuthType != kube.AuthServiceAccount && c.AuthType != kube.AuthKubeConfig {
		errs = append(errs, fmt.Errorf("auth_type: unknown %q (want %s or %s)", c.AuthType, kube.AuthServiceAccount, kube.AuthKubeConfig))
	}
	if strings.Trim(c.MountPath, "/") == "" {
		errs = append(errs, errors.New("mount_path: required (the Vault Kubernetes auth mount, e.g. kubernetes)"))
	}
	if c.Unidentified != UnidentifiedReject && c.Unidentified != UnidentifiedPass {
		errs = append(errs, fmt.Errorf("unidentified: unknown %q (want %s or %s)", c.Unidentified, UnidentifiedReject, UnidentifiedPass))
	}
	if c.AliasNameSource != AliasServiceAccountUID && c.AliasNameSource != AliasServiceAccountName {
		errs = append(errs, fmt.Errorf("alias_name_source: unknown %q (want %s or %s, as the mount's roles say)",
			c.AliasNameSource, AliasServiceAccountUID, AliasServiceAccountName))
	}
	return errors.Join(errs...)
}

// TokenLookupConfig is the Vault token mode.
type TokenLookupConfig struct {
	// MaxConcurrentLookups bounds Vault lookups in flight for credentials
	// not in the cache; requests beyond it are refused as unavailable.
	MaxConcurrentLookups int `mapstructure:"max_concurrent_lookups"`
	// MaxLookupsPerSecond bounds the rate of Vault lookups (with a burst of
	// MaxConcurrentLookups), so a flood of distinct credentials cannot turn
	// into a flood of Vault calls; requests beyond it are refused as unavailable.
	MaxLookupsPerSecond float64 `mapstructure:"max_lookups_per_second"`
	// MaxLookupsPerSecondPerClient bounds one client address's share of
	// MaxLookupsPerSecond, so one flooding peer cannot starve the others.
	// Default (0): a quarter of MaxLookupsPerSecond.
	MaxLookupsPerSecondPerClient float64 `mapstructure:"max_lookups_per_second_per_client"`

	_ struct{}
}

func defaultServerConfig() ServerConfig {
	return ServerConfig{
		Header: DefaultIdentityHeader,
		IdentityToken: configoptional.Default(IdentityTokenServerConfig{
			EntityNameClaim:     "entity_name",
			Leeway:              defaultLeeway,
			JWKSRefetchInterval: defaultJWKSRefetchInterval,
			JWKSRefreshInterval: defaultJWKSRefreshInterval,
		}),
		TokenLookup: configoptional.Default(TokenLookupConfig{
			MaxConcurrentLookups: 32, MaxLookupsPerSecond: 100,
		}),
		KubernetesPods: configoptional.Default(KubernetesPodsConfig{
			AuthType: kube.AuthServiceAccount, MountPath: "kubernetes", AliasNameSource: AliasServiceAccountUID,
			Unidentified: UnidentifiedReject,
		}),
		CacheTTL:          defaultCacheTTL,
		CacheSize:         defaultCacheSize,
		NegativeCacheTTL:  defaultNegativeCacheTTL,
		MaxCredentialSize: defaultMaxCredentialSize,
		Audit:             configoptional.Default(defaultServerAuditConfig()),
	}
}

// Validate checks the `server:` block.
func (c *ServerConfig) Validate() error {
	var errs []error
	modes := 0
	for _, set := range []bool{c.IdentityToken.HasValue(), c.TokenLookup.HasValue(), c.KubernetesPods.HasValue()} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		errs = append(errs, errors.New("identity_token: set exactly one of identity_token, token_lookup or kubernetes_pods"))
	}
	if c.KubernetesPods.HasValue() && c.Audit.HasValue() {
		errs = append(errs, errors.New("audit: no credential to hash with kubernetes_pods (the agent's own is hashed with the top-level audit block)"))
	}
	rules, err := c.rules()
	if err != nil {
		errs = append(errs, fmt.Errorf("attributes: %w", err))
	}
	if c.Tenant.HasValue() && err == nil {
		if a := c.Tenant.Get().Attribute; a != "" && a != identity.Namespace && a != identity.EntityID &&
			!slices.ContainsFunc(rules, func(r identity.Rule) bool { return r.Key == a }) {
			errs = append(errs, fmt.Errorf("tenant: attribute %q is not one the identity carries: use %s, or fill it with server.attributes", a, identity.Namespace))
		}
	}
	if strings.TrimSpace(c.Header) == "" {
		errs = append(errs, errors.New("header: required"))
	}
	if c.CacheTTL <= 0 {
		errs = append(errs, fmt.Errorf("cache_ttl: must be positive, got %s", c.CacheTTL))
	}
	if c.CacheSize <= 0 {
		errs = append(errs, fmt.Errorf("cache_size: must be positive, got %d", c.CacheSize))
	}
	if c.NegativeCacheTTL < 0 {
		errs = append(errs, errors.New("negative_cache_ttl: must not be negative"))
	}
	if c.MaxCredentialSize <= 0 {
		errs = append(errs, errors.New("max_credential_size: must be positive"))
	}
	return errors.Join(errs...)
}

// rules are the attribute rules of the configured mode: its defaults, then
// the attributes block. Sources are checked against the mode.
func (c *ServerConfig) rules() (identity.Rules, error) {
	m := map[string]string{}
	jwtMode := c.IdentityToken.HasValue()
	if jwtMode {
		if claim := c.IdentityToken.Get().EntityNameClaim; claim != "" {
			m[identity.EntityName] = "claim:" + claim
		}
	} else {
		m[identity.EntityName] = "entity:name"
		m[identity.Policies] = "token:policies"
	}
	podsMode := c.KubernetesPods.HasValue()
	if podsMode {
		delete(m, identity.Policies) // no token: the entity's own policies are not the point
	}
	for k, v := range c.Attributes {
		if strings.EqualFold(k, identity.CredentialHMAC) {
			return nil, errRuleFillsHMAC
		}
		if v == "" {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	rules, err := identity.ParseRules(m)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if (r.Source.Kind == identity.FromClaim) != jwtMode {
			mode := "token_lookup (sources entity:... and token:...)"
			if jwtMode {
				mode = "identity_token (sources claim:...)"
			}
			return nil, fmt.Errorf("%s: source %s does not exist in mode %s", r.Key, r.Source, mode)
		}
		if podsMode && r.Source.Kind != identity.FromEntityName && r.Source.Kind != identity.FromEntityMetadata && r.Source.Kind != identity.FromEntityGroups {
			return nil, fmt.Errorf("%s: source %s does not exist in mode kubernetes_pods (sources entity:...)", r.Key, r.Source)
		}
	}
	return rules, nil
}

// Validate checks the `identity_token:` block.
func (c *IdentityTokenServerConfig) Validate() error {
	var errs []error
	if c.Audience == "" {
		errs = append(errs, errors.New("audience: required (the Vault OIDC role's client_id)"))
	}
	for i, iss := range c.Issuers {
		if u, err := url.Parse(iss); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("issuers::%d: not an http(s) URL: %q", i, iss))
		}
	}
	if c.Leeway < 0 {
		errs = append(errs, errors.New("leeway: must not be negative"))
	}
	if c.JWKSRefetchInterval <= 0 {
		errs = append(errs, errors.New("jwks_refetch_interval: must be positive"))
	}
	if c.JWKSRefreshInterval < c.JWKSRefetchInterval {
		errs = append(errs, fmt.Errorf("jwks_refresh_interval: must be at least jwks_refetch_interval, got %s", c.JWKSRefreshInterval))
	}
	return errors.Join(errs...)
}

// Validate checks the `token_lookup:` block.
func (c *TokenLookupConfig) Validate() error {
	var errs []error
	if c.MaxConcurrentLookups <= 0 {
		errs = append(errs, errors.New("max_concurrent_lookups: must be positive"))
	}
	if c.MaxLookupsPerSecond <= 0 {
		errs = append(errs, errors.New("max_lookups_per_second: must be positive"))
	}
	if c.MaxLookupsPerSecondPerClient < 0 || c.MaxLookupsPerSecondPerClient > c.MaxLookupsPerSecond {
		errs = append(errs, fmt.Errorf("max_lookups_per_second_per_client: must be between 0 (a quarter of "+
			"max_lookups_per_second) and max_lookups_per_second, got %g", c.MaxLookupsPerSecondPerClient))
	}
	return errors.Join(errs...)
}

// settings are the server side's settings: the mode's, its rules parsed,
// its defaults applied.
func (c *ServerConfig) settings() (server.Settings, error) {
	rules, err := c.rules()
	if err != nil {
		return server.Settings{}, err
	}
	s := server.Settings{
		Header: c.Header, MaxCredentialSize: c.MaxCredentialSize,
		CacheTTL: c.CacheTTL, CacheSize: c.CacheSize, NegativeCacheTTL: c.NegativeCacheTTL, Rules: rules,
	}
	if c.Tenant.HasValue() {
		s.TenantAttribute = c.Tenant.Get().Attribute
	}
	if c.Audit.HasValue() {
		a := c.Audit.Get()
		s.Audit = &server.AuditSettings{Device: strings.Trim(a.Device, "/"), OnFailure: a.OnFailure}
	}
	switch {
	case c.KubernetesPods.HasValue():
		k := c.KubernetesPods.Get()
		s.Pods = &server.PodSettings{NodeName: k.NodeName, AuthType: k.AuthType,
			Mount: strings.Trim(k.MountPath, "/"), AliasByName: k.AliasNameSource == AliasServiceAccountName,
			PassUnidentified: k.Unidentified == UnidentifiedPass}
	case c.IdentityToken.HasValue():
		j := c.IdentityToken.Get()
		s.JWT = &server.JWTSettings{Issuers: j.Issuers, Audience: j.Audience, Leeway: j.Leeway,
			RefetchInterval: j.JWKSRefetchInterval, RefreshInterval: j.JWKSRefreshInterval}
	default:
		l := c.TokenLookup.Get()
		s.Lookup = &server.LookupSettings{MaxConcurrent: l.MaxConcurrentLookups, PerSecond: l.MaxLookupsPerSecond, PerSecondPerClient: l.perClientRate()}
	}
	return s, nil
}

// perClientRate is MaxLookupsPerSecondPerClient, or its default.
func (c *TokenLookupConfig) perClientRate() float64 {
	if c.MaxLookupsPerSecondPerClient > 0 {
		return c.MaxLookupsPerSecondPerClient
	}
	return max(1, c.MaxLookupsPerSecond/4)
}
