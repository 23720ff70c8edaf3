package e2e

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vaultlightstep/vaultlightstep/internal/kubetest"
	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// podSender is a workload's OTel exporter, unchanged but for where its
// connections come from: its pod's IP (a loopback address here).
type podSender struct {
	client ptraceotlp.GRPCClient
	next   uint32
	index  byte
	// authorization, when set, is sent as a credential: a pod's agent
	// must ignore it (the pod is who it is).
	authorization string
}

func newPodSender(t *testing.T, podIP, agent string, index byte) *podSender {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(podIP)}}
	conn, err := grpc.NewClient(agent, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &podSender{client: ptraceotlp.NewGRPCClient(conn), index: index}
}

// send sends one span whose resource forges another workload's identity;
// it returns the span's id, and the agent's answer.
func (s *podSender) send(forgedEntity string) (pcommon.SpanID, error) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("vault.entity.id", forgedEntity)
	rs.Resource().Attributes().PutStr("vault.vouched_by.entity.id", forgedEntity)
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.next++
	id := pcommon.SpanID{s.index, 0, 0, 0, byte(s.next >> 24), byte(s.next >> 16), byte(s.next >> 8), byte(s.next)}
	span.SetSpanID(id)
	span.SetTraceID(pcommon.TraceID{1, s.index})
	span.SetName("op")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.authorization != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.authorization)
	}
	_, err := s.client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	return id, err
}

// One Vault identity per workload behind one node agent, with unchanged
// OTLP exporters: the built collector as a node agent (agent.yaml with
// node-agent.yaml) watches its node's pods in a real kube-apiserver and
// stamps each request with the Vault entity of its pod's service account
// (entities made by each account's own Kubernetes login); the gateway
// keeps those stamps from the agents' entity only (VOUCHERS). Each
// workload's spans arrive with its own entity, whatever it forged (keys,
// and another entity's valid identity token as a credential), and
// the agents' entity as voucher; an address no pod of the node has is
// refused.
func TestOneIdentityPerWorkloadBehindTheNodeAgent(t *testing.T) {
	k := kubetest.Start(t)
	v := vaulttest.Start(t)
	v.EnableFileAudit(t)
	audience := testbed.ConfigureVault(t, v, v.Addr)
	testbed.TokenWriter(t, v)("ls-token-v1")
	sink := testbed.StartSink(t)
	standIn := testbed.StartStandIn(t, sink, "ls-token-v1")

	// Workloads: a service account each, whose Vault entity exists from
	// its own Kubernetes login; their pods on node-a.
	k.Namespace(t, "apps", nil)
	k.Namespace(t, "observability", nil)
	k.ServiceAccount(t, "observability", "vault-reviewer")
	k.BindClusterRole(t, "vault-reviewer", "system:auth-delegator", "observability", "vault-reviewer")
	v.EnableAuth(t, "kubernetes", "kubernetes")
	v.Write(t, "auth/kubernetes/config", map[string]any{"kubernetes_host": k.URL, "kubernetes_ca_cert": k.CAPEM,
		"disable_local_ca_jwt": true, "token_reviewer_jwt": k.Token(t, "observability", "vault-reviewer", kubetest.TokenOptions{})})
	v.Write(t, "auth/kubernetes/role/apps", map[string]any{"bound_service_account_names": "*", "bound_service_account_namespaces": "apps",
		"token_policies": "default", "token_ttl": "5m"})
	entities := map[string]string{}
	for i, sa := range []string{"payments", "checkout"} {
		k.ServiceAccount(t, "apps", sa)
		sec, err := v.ClientWithToken(t, "").Logical().Write("auth/kubernetes/login", map[string]any{
			"role": "apps", "jwt": k.Token(t, "apps", sa, kubetest.TokenOptions{})})
		require.NoError(t, err)
		entities[sa] = sec.Auth.EntityID
		k.Pod(t, kubetest.PodSpec{Namespace: "apps", Name: sa + "-1", Node: "node-a", ServiceAccount: sa, IP: "127.0.0." + string(rune('2'+i))})
	}

	// The agent: its entity otel-agents, allowed to look up pods' entities
	// (pod-identity.hcl, applied with setup.yaml) and to watch pods (a
	// ClusterRole, as the chart's).
	var err error
	agentIdentity := testbed.NewWorkload(t, v, "otel-agents")
	v.Write(t, "auth/approle/role/otel-agents", map[string]any{"token_policies": []string{"otel-identity", "pod-identity"}})
	k.ClusterRole(t, "pod-reader", kubetest.Object{"apiGroups": []string{""}, "resources": []string{"pods", "serviceaccounts"}, "verbs": []string{"get", "list", "watch"}})
	k.ServiceAccount(t, "observability", "otel-agent")
	k.BindClusterRole(t, "otel-agent-pod-reader", "pod-reader", "observability", "otel-agent")

	gw := testbed.AppRoleCredentials(t, v, "otel-gateway")
	gateway := testbed.StartCollector(t, "gateway", testbed.Example("gateway.yaml"), map[string]string{
		"VAULT_ADDR": v.Addr, "VAULT_ROLE_ID_FILE": gw.RoleIDFile, "VAULT_SECRET_ID_FILE": gw.SecretIDFile,
		"AGENT_AUDIENCE": audience, "QUEUE_DIR": filepath.Join(t.TempDir(), "queue"),
		"LIGHTSTEP_ENDPOINT": standIn.OTLPGRPC, "LIGHTSTEP_INSECURE": "true", "VOUCHERS": "[otel-agents]",
	})
	agent := testbed.StartCollector(t, "node-agent", testbed.Example("agent.yaml"), map[string]string{
		"VAULT_ADDR": v.Addr, "VAULT_ROLE_ID_FILE": agentIdentity.RoleIDFile, "VAULT_SECRET_ID_FILE": agentIdentity.SecretIDFile,
		"GATEWAY_ENDPOINT": gateway.OTLPGRPC, "GATEWAY_INSECURE": "true",
		"NODE_NAME": "node-a", "KUBE_AUTH_TYPE": "kubeConfig", "VAULT_ALIAS_NAME_SOURCE": "serviceaccount_uid",
		"KUBECONFIG": k.Kubeconfig(t, k.Token(t, "observability", "otel-agent", kubetest.TokenOptions{})),
	}, testbed.Example("node-agent.yaml"))

	sent := map[string][]pcommon.SpanID{}
	for i, sa := range []string{"payments", "checkout"} {
		s := newPodSender(t, "127.0.0."+string(rune('2'+i)), agent.OTLPGRPC, byte(i+1))
		// A valid Vault identity token, of the agents' entity: ignored.
		s.authorization = agentIdentity.IdentityToken(t, v)
		other := entities[map[string]string{"payments": "checkout", "checkout": "payments"}[sa]]
		for range 20 {
			var id pcommon.SpanID
			require.Eventually(t, func() bool { id, err = s.send(other); return err == nil }, eventually, poll,
				"%s: the agent refused its spans: %v\n%s", sa, err, agent.LogTail(20))
			sent[sa] = append(sent[sa], id)
		}
	}
	_, err = newPodSender(t, "127.0.0.9", agent.OTLPGRPC, 9).send(entities["payments"])
	assert.Error(t, err, "an address no pod of the node has was accepted")

	// With UNIDENTIFIED=pass, a pod whose service account has no Vault
	// entity still sends: stamped with the agents' own identity by the
	// gateway, its forgery removed, nothing vouched.
	k.ServiceAccount(t, "apps", "batch")
	k.Pod(t, kubetest.PodSpec{Namespace: "apps", Name: "batch-1", Node: "node-a", ServiceAccount: "batch", IP: "127.0.0.4"})
	passing := testbed.StartCollector(t, "node-agent-pass", testbed.Example("agent.yaml"), map[string]string{
		"VAULT_ADDR": v.Addr, "VAULT_ROLE_ID_FILE": agentIdentity.RoleIDFile, "VAULT_SECRET_ID_FILE": agentIdentity.SecretIDFile,
		"GATEWAY_ENDPOINT": gateway.OTLPGRPC, "GATEWAY_INSECURE": "true", "UNIDENTIFIED": "pass",
		"NODE_NAME": "node-a", "KUBE_AUTH_TYPE": "kubeConfig", "VAULT_ALIAS_NAME_SOURCE": "serviceaccount_uid",
		"KUBECONFIG": k.Kubeconfig(t, k.Token(t, "observability", "otel-agent", kubetest.TokenOptions{})),
	}, testbed.Example("node-agent.yaml"))
	batch := newPodSender(t, "127.0.0.4", passing.OTLPGRPC, 3)
	payments := newPodSender(t, "127.0.0.2", passing.OTLPGRPC, 4)
	for range 5 {
		var id pcommon.SpanID
		require.Eventually(t, func() bool { id, err = batch.send(entities["payments"]); return err == nil }, eventually, poll,
			"batch: %v\n%s", err, passing.LogTail(20))
		sent["batch"] = append(sent["batch"], id)
		id, err = payments.send(entities["checkout"])
		require.NoError(t, err)
		sent["payments"] = append(sent["payments"], id)
	}
	entities["batch"] = agentIdentity.EntityID

	require.Eventually(t, func() bool { return sink.Count() >= len(sent["payments"])+len(sent["checkout"])+len(sent["batch"]) }, eventually, poll,
		"spans lost: %d arrived\n%s", sink.Count(), gateway.LogTail(20))
	for sa, ids := range sent {
		for _, id := range ids {
			span, ok := sink.Span(id)
			require.True(t, ok)
			assert.Equal(t, []string{entities[sa]}, span.Resource.Values("vault.entity.id"), "%s", sa)
			if sa == "batch" { // not vouched for: the agents' own identity
				assert.Empty(t, span.Resource.Values("vault.vouched_by.entity.id"), "%s", sa)
				continue
			}
			assert.Equal(t, []string{agentIdentity.EntityID}, span.Resource.Values("vault.vouched_by.entity.id"), "%s", sa)
			assert.Equal(t, []string{"otel-agents"}, span.Resource.Values("vault.vouched_by.entity.name"), "%s", sa)
			assert.Len(t, span.Resource.Values("vault.credential.hmac"), 1, "%s", sa)
		}
	}
	t.Logf("%d spans of 3 workloads through node agents: %d and %d stamped with their own service account's entity, %d (no entity, unidentified: pass) with the agents'",
		sink.Count(), len(sent["payments"]), len(sent["checkout"]), len(sent["batch"]))
}
