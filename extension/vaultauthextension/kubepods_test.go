package vaultauthextension

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/server"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/kube"
	"github.com/vaultlightstep/vaultlightstep/internal/kubetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// podsEnv is a node ("node-a") with workloads in namespace "apps", each a
// pod with its own service account, whose Vault entities exist because
// each has logged in once through Vault's Kubernetes auth; and the agent's
// service account allowed to watch pods (the chart's ClusterRole).
type podsEnv struct {
	k        *kubetest.Server
	v        *vaulttest.Server
	entities map[string]string // service account -> entity id
	// vaultAddr is where the agent reaches Vault (default: the server).
	vaultAddr string
}

func newPodsEnv(t *testing.T, aliasSource string) *podsEnv {
	t.Helper()
	e := &podsEnv{k: kubetest.Start(t), v: vaulttest.Start(t), entities: map[string]string{}}
	k, v := e.k, e.v
	k.Namespace(t, "apps", nil)
	k.Namespace(t, "observability", nil)
	k.ServiceAccount(t, "observability", "vault-reviewer")
	k.BindClusterRole(t, "vault-reviewer", "system:auth-delegator", "observability", "vault-reviewer")
	v.EnableAuth(t, "kubernetes", "kubernetes")
	v.Write(t, "auth/kubernetes/config", map[string]any{"kubernetes_host": k.URL, "kubernetes_ca_cert": k.CAPEM,
		"disable_local_ca_jwt": true, "token_reviewer_jwt": k.Token(t, "observability", "vault-reviewer", kubetest.TokenOptions{})})
	v.Write(t, "auth/kubernetes/role/apps", map[string]any{"bound_service_account_names": "*", "bound_service_account_namespaces": "apps",
		"alias_name_source": aliasSource, "token_policies": "default", "token_ttl": "5m"})
	for _, sa := range []string{"payments", "checkout", "batch"} {
		k.ServiceAccount(t, "apps", sa)
		sec, err := v.ClientWithToken(t, "").Logical().Write("auth/kubernetes/login", map[string]any{
			"role": "apps", "jwt": k.Token(t, "apps", sa, kubetest.TokenOptions{})})
		require.NoError(t, err)
		e.entities[sa] = sec.Auth.EntityID
	}
	k.ClusterRole(t, "pod-reader", kubetest.Object{"apiGroups": []string{""}, "resources": []string{"pods", "serviceaccounts"}, "verbs": []string{"get", "list", "watch"}})
	k.ServiceAccount(t, "observability", "otel-agent")
	k.BindClusterRole(t, "otel-agent-pod-reader", "pod-reader", "observability", "otel-agent")
	t.Setenv("KUBECONFIG", k.Kubeconfig(t, k.Token(t, "observability", "otel-agent", kubetest.TokenOptions{})))
	return e
}

// agent starts a vaultauth instance in kubernetes_pods mode on node-a,
// logged in with a token of the shipped pod-identity policy.
func (e *podsEnv) agent(t *testing.T, aliasSource string, unidentified ...string) extensionauth.Server {
	t.Helper()
	hcl, err := os.ReadFile(filepath.Join("..", "..", "examples", "vault", "pod-identity.hcl"))
	require.NoError(t, err)
	e.v.PutPolicy(t, "pod-identity", string(hcl))
	token := e.v.Write(t, "auth/token/create", map[string]any{"policies": []string{"pod-identity"}, "ttl": "1h", "no_parent": true}).Auth.ClientToken
	cfg := createDefaultConfig()
	cfg.Vault.Address = e.v.Addr
	if e.vaultAddr != "" {
		cfg.Vault.Address = e.vaultAddr
	}
	withToken(cfg, token)
	pods := cfg.Server.GetOrInsertDefault().KubernetesPods.GetOrInsertDefault()
	pods.NodeName, pods.AuthType, pods.AliasNameSource = "node-a", kube.AuthKubeConfig, aliasSource
	if len(unidentified) > 0 {
		pods.Unidentified = unidentified[0]
	}
	h := startExtension(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range h.logs.All() {
				t.Logf("%s %s %v", l.Level, l.Message, l.ContextMap())
			}
		}
	})
	return h.ext.(extensionauth.Server)
}

// from authenticates a request whose connection comes from ip.
func from(a extensionauth.Server, ip string) (*identity.Identity, error) {
	ctx := client.NewContext(context.Background(), client.Info{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}})
	ctx, err := a.Authenticate(ctx, map[string][]string{})
	if err != nil {
		return nil, err
	}
	if client.FromContext(ctx).Auth == nil {
		return nil, nil // accepted without an identity (unidentified: pass)
	}
	id, _ := identity.FromAuth(client.FromContext(ctx).Auth, []string{identity.EntityID, identity.EntityName})
	return id, nil
}

// A node agent identifies each workload by the pod its connection comes
// from: the Vault entity of the pod's service account, in both alias name
// sources of Vault's Kubernetes auth. What it cannot vouch for it refuses:
// another node's pod, a host-network pod (its address is the node's), a
// deleted pod's address, a service account without an entity.
func TestKubernetesPodsIdentifySenders(t *testing.T) {
	for _, source := range []string{AliasServiceAccountUID, AliasServiceAccountName} {
		t.Run(source, func(t *testing.T) {
			e := newPodsEnv(t, source)
			k := e.k
			k.ServiceAccount(t, "apps", "no-entity")
			for _, p := range []kubetest.PodSpec{
				{Name: "payments-1", Node: "node-a", ServiceAccount: "payments", IP: "127.0.0.2"},
				{Name: "checkout-1", Node: "node-a", ServiceAccount: "checkout", IP: "127.0.0.3"},
				{Name: "batch-1", Node: "node-b", ServiceAccount: "batch", IP: "127.0.0.4"},
				{Name: "host-agent", Node: "node-a", ServiceAccount: "payments", IP: "127.0.0.5", HostNetwork: true},
				{Name: "stranger", Node: "node-a", ServiceAccount: "no-entity", IP: "127.0.0.6"},
			} {
				p.Namespace = "apps"
				k.Pod(t, p)
			}
			a := e.agent(t, source)
			var id *identity.Identity
			var err error
			require.Eventually(t, func() bool { id, err = from(a, "127.0.0.2"); return err == nil }, eventually, poll, "payments: %v", err)
			assert.Equal(t, e.entities["payments"], id.EntityID())
			id, err = from(a, "127.0.0.3")
			require.NoError(t, err)
			assert.Equal(t, e.entities["checkout"], id.EntityID())

			for ip, want := range map[string]error{
				"127.0.0.4": server.ErrUnavailable,     // another node's pod: not in this node's watch
				"127.0.0.5": server.ErrUnauthenticated, // host network
				"127.0.0.6": server.ErrUnauthenticated, // no entity
				"127.0.0.9": server.ErrUnavailable,     // no pod (yet)
			} {
				_, err := from(a, ip)
				assert.ErrorIs(t, err, want, "%s", ip)
			}

			k.Delete(t, "/api/v1/namespaces/apps/pods/payments-1")
			require.Eventually(t, func() bool { _, err := from(a, "127.0.0.2"); return err != nil }, eventually, poll,
				"a deleted pod's address still names it")
		})
	}
}

// With unidentified: pass, what the agent cannot vouch for is accepted
// without an identity (the gateway stamps the agent's own, as an agent
// without this mode does), and what it can is still the pod's entity.
func TestKubernetesPodsPassUnidentified(t *testing.T) {
	e := newPodsEnv(t, AliasServiceAccountName)
	e.k.ServiceAccount(t, "apps", "no-entity")
	for _, p := range []kubetest.PodSpec{
		{Name: "payments-1", Node: "node-a", ServiceAccount: "payments", IP: "127.0.0.2"},
		{Name: "host-agent", Node: "node-a", ServiceAccount: "payments", IP: "127.0.0.5", HostNetwork: true},
		{Name: "stranger", Node: "node-a", ServiceAccount: "no-entity", IP: "127.0.0.6"},
	} {
		p.Namespace = "apps"
		e.k.Pod(t, p)
	}
	a := e.agent(t, AliasServiceAccountName, UnidentifiedPass)
	var id *identity.Identity
	var err error
	require.Eventually(t, func() bool { id, err = from(a, "127.0.0.2"); return err == nil && id != nil }, eventually, poll, "payments")
	assert.Equal(t, e.entities["payments"], id.EntityID())
	for _, ip := range []string{"127.0.0.5", "127.0.0.6", "127.0.0.9"} {
		id, err := from(a, ip)
		require.NoError(t, err, ip)
		assert.Nil(t, id, "%s: an identity for a sender the agent cannot vouch for", ip)
	}
}

// A pod deleted and its address given to another pod (of another service
// account) yields the new pod's identity, never the old one's once the new
// one has been seen; how long the agent takes is the watch's latency,
// measured. The agent's Vault lookups are one per service account.
func TestKubernetesPodsAddressReuse(t *testing.T) {
	e := newPodsEnv(t, AliasServiceAccountName)
	proxy := vaulttest.NewCountingProxy(t, e.v)
	e.vaultAddr = proxy.Addr // the agent reaches Vault through the proxy
	e.k.Pod(t, kubetest.PodSpec{Namespace: "apps", Name: "payments-1", Node: "node-a", ServiceAccount: "payments", IP: "127.0.0.2"})
	a := e.agent(t, AliasServiceAccountName)
	var id *identity.Identity
	var err error
	require.Eventually(t, func() bool { id, err = from(a, "127.0.0.2"); return err == nil }, eventually, poll)
	require.Equal(t, e.entities["payments"], id.EntityID())

	const rounds = 5
	var latencies []time.Duration
	old, next := "payments", "checkout"
	for i := range rounds {
		// The pod is deleted: terminating (never vouched for) until the
		// kubelet, once its containers are gone, deletes it for good; then
		// its address goes to a new pod.
		oldPod := "/api/v1/namespaces/apps/pods/" + old + "-" + fmt.Sprint(i+1)
		e.k.Delete(t, oldPod)
		require.Eventually(t, func() bool { _, err := from(a, "127.0.0.2"); return errors.Is(err, server.ErrUnauthenticated) }, eventually, poll,
			"round %d: a terminating pod still vouched for", i)
		e.k.DeleteNow(t, oldPod)
		e.k.Pod(t, kubetest.PodSpec{Namespace: "apps", Name: next + "-" + fmt.Sprint(i+2), Node: "node-a", ServiceAccount: next, IP: "127.0.0.2"})
		reassigned := time.Now()
		seenNew := false
		for time.Since(reassigned) < eventually {
			id, err := from(a, "127.0.0.2")
			switch {
			case err == nil && id.EntityID() == e.entities[next]:
				if !seenNew {
					latencies = append(latencies, time.Since(reassigned))
				}
				seenNew = true
			case err == nil && id.EntityID() == e.entities[old]:
				require.False(t, seenNew, "round %d: the old pod's identity after the new pod's was seen", i)
			}
			if seenNew && time.Since(reassigned) > 200*time.Millisecond {
				break
			}
			time.Sleep(time.Millisecond) // a request every millisecond
		}
		require.True(t, seenNew, "round %d: the new pod's identity never came", i)
		old, next = next, old
	}
	slices.Sort(latencies)
	t.Logf("address reused %d times: the new pod's identity after %v (median %v, max %v); Vault entity lookups: %d for 2 service accounts",
		rounds, latencies, latencies[len(latencies)/2], latencies[len(latencies)-1], proxy.Count("identity/lookup/entity"))
	assert.LessOrEqual(t, proxy.Count("identity/lookup/entity"), 2, "one lookup per service account per cache_ttl")
}
