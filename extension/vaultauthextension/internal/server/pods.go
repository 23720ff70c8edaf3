package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"golang.org/x/sync/singleflight"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/kube"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// PodSettings is the kubernetes_pods mode: a sender is the pod of this
// node its connection comes from, and its identity the Vault entity of that
// pod's service account (the alias Vault's Kubernetes auth gives it).
type PodSettings struct {
	NodeName string
	AuthType string // kube.AuthServiceAccount or kube.AuthKubeConfig
	Mount    string // the Kubernetes auth mount, e.g. "kubernetes"
	// AliasByName: the mount's roles name aliases <namespace>/<name>
	// (alias_name_source serviceaccount_name), not by the account's uid.
	AliasByName bool
	// PassUnidentified: a sender whose pod gives no identity (none found,
	// host network, terminating, no Vault entity) is accepted without one,
	// instead of refused: the gateway then stamps the agent's own.
	PassUnidentified bool
}

// KindPod is the credential kind of an identity vouched for by pod
// association: there is no credential, only the connection's address.
const KindPod = "kubernetes_pod"

// podIndex names the pod of an address (kube.PodIndex).
type podIndex interface {
	ByIP(ip netip.Addr) (*kube.Pod, string)
	Synced() bool
}

// podSender finds the pod behind a request's connection. Its "credential"
// is the pod's service account, <namespace>/<name>: the verdict cache is
// then one entry per service account.
type podSender struct{ index podIndex }

// credential names the service account of the pod the request comes
// from, or says why not; temporary reasons (the watch is behind, or not
// yet synced) make the sender retry.
func (p *podSender) credential(ctx context.Context) (account, reason string, temporary bool) {
	if !p.index.Synced() {
		return "", ReasonPodsNotSynced, true
	}
	ip, ok := clientIP(ctx)
	if !ok {
		return "", kube.NoPod, false
	}
	pod, why := p.index.ByIP(ip)
	switch why {
	case "":
		return pod.Account, "", false
	case kube.NoPod, kube.Ambiguous:
		return "", why, true // a new pod's address is known moments after it starts
	}
	return "", why, false
}

// clientIP is the request's peer address, without allocating.
func clientIP(ctx context.Context) (netip.Addr, bool) {
	switch a := client.FromContext(ctx).Addr.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case *net.IPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case nil:
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(clientAddress(ctx))
	return ip.Unmap(), err == nil
}

// ReasonPodsNotSynced: the pod watch has not listed the node's pods yet.
const ReasonPodsNotSynced = "pods_not_synced"

// podVerifier resolves a service account to its Vault entity, once per
// cache_ttl, on the collector's own context.
type podVerifier struct {
	vault     vaultclient.Vault
	s         PodSettings
	namespace string // the Vault namespace the entities live in
	rules     identity.Rules
	tenant    *tenantRule
	verdicts  *verdicts
	timeout   time.Duration
	runCtx    context.Context
	kube      kubernetes.Interface // service account uids (alias by uid)

	inflight   singleflight.Group
	accessorMu sync.Mutex
	accessor   string // the mount's accessor, read once
}

func (v *podVerifier) verify(ctx context.Context, account string, key Key, _ string) (verdict, error) {
	ch := v.inflight.DoChan(account, func() (any, error) { return v.resolveAndRecord(account, key) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return verdict{}, res.Err
		}
		return res.Val.(verdict), nil
	case <-ctx.Done():
		return verdict{}, unavailable(ReasonRequestExpired, errors.New("the request ended before Vault answered; the lookup goes on"))
	}
}

func (v *podVerifier) resolveAndRecord(account string, key Key) (verdict, error) {
	now := time.Now().UnixNano()
	if vd, ok := v.verdicts.accepted.get(key, now); ok {
		return vd, nil
	}
	if _, ok := v.verdicts.refused.get(key, now); ok {
		return verdict{}, refused(ReasonCachedRefusal, "refused moments ago")
	}
	select {
	case <-v.vault.LoggedIn():
	default:
		return verdict{}, unavailable(ReasonNotLoggedIn, errors.New("agent not logged in to Vault yet"))
	}
	ctx, cancel := context.WithTimeout(v.runCtx, v.timeout)
	defer cancel()
	id, err := v.resolve(ctx, account)
	if err == nil {
		id, err = v.tenant.resolve(id)
	}
	if err != nil {
		if verdictOf(err).checked {
			v.verdicts.refuse(key)
		}
		return verdict{}, err
	}
	return v.verdicts.accept(key, id, time.Time{}, &acceptance{kind: KindPod}), nil
}

// resolve finds the entity of the service account's alias on the mount.
func (v *podVerifier) resolve(ctx context.Context, account string) (*identity.Identity, error) {
	accessor, err := v.mountAccessor(ctx)
	if err != nil {
		return nil, unavailable(ReasonVaultUnavail, err)
	}
	alias, err := v.aliasName(ctx, account)
	if err != nil {
		return nil, err
	}
	entityID, e, err := vaultclient.LookupEntityByAlias(ctx, v.vault, alias, accessor)
	switch {
	case errors.Is(err, vaultclient.ErrNoEntity):
		return nil, refusedChecked(ReasonNoEntity, "service account %s has no Vault entity on mount %s (alias %s)", account, v.s.Mount, alias)
	case err != nil:
		if errors.Is(err, vaultclient.ErrEntityForbidden) {
			v.vault.RequestLogin()
		}
		return nil, unavailable(ReasonVaultUnavail, err)
	}
	facts := identity.Facts{EntityName: e.Name, EntityMetadata: e.Metadata}
	if v.rules.Needs(identity.FromEntityGroups) {
		full, err := vaultclient.ReadEntity(ctx, v.vault, entityID, true)
		if err != nil {
			return nil, unavailable(ReasonVaultUnavail, err)
		}
		facts.GroupNames = full.GroupNames
	}
	return identity.New(entityID, v.namespace, v.rules.Apply(facts)...), nil
}

// mountAccessor reads the mount's accessor once.
func (v *podVerifier) mountAccessor(ctx context.Context) (string, error) {
	v.accessorMu.Lock()
	defer v.accessorMu.Unlock()
	if v.accessor == "" {
		a, err := vaultclient.MountAccessor(ctx, v.vault, v.s.Mount)
		if err != nil {
			return "", err
		}
		v.accessor = a
	}
	return v.accessor, nil
}

// aliasName is the alias Vault's Kubernetes auth gives the account.
func (v *podVerifier) aliasName(ctx context.Context, account string) (string, error) {
	if v.s.AliasByName {
		return account, nil
	}
	ns, name, _ := strings.Cut(account, "/")
	sa, err := v.kube.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", unavailable(ReasonKubeUnavail, fmt.Errorf("service account %s: %w", account, err))
	}
	return string(sa.UID), nil
}

// ReasonKubeUnavail: the API server did not answer about a service account.
const ReasonKubeUnavail = "kubernetes_unavailable"
