package helmtest

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// expect is what one value set must render: the tests check the rendered
// objects and the collector configs against it.
type expect struct {
	fullname string

	agentAuth, gatewayAuth string // auth.method of vaultauth/self and vaultauth/lightstep
	agentRole, gatewayRole string // their auth.role (kubernetes method)
	agentMount             string // their auth.mount_path, "" for the default
	agentIdentityRole      string // client.identity_token.role of vaultauth/self
	agentTokenFile         string // auth.token_file (token method)
	gatewayVaultAddr       string // VAULT_ADDR of the gateway

	tls             bool // gateway receivers with TLS, agents verifying it
	generatedCert   bool // the chart generates the gateway's certificate Secret
	persistence     bool // volumeClaimTemplates for the queue
	queueDir        string
	gatewayReplicas int32
	audience        string

	// delegated are the service accounts bound to system:auth-delegator.
	delegated []string
	// workloadIdentity: the agents watch their node's pods (a ClusterRole)
	// and stamp each workload's entity; aliasByUID: they also get service
	// accounts; vouchers: what the gateway's VOUCHERS says.
	workloadIdentity, aliasByUID  bool
	aliasNameSource, unidentified string
	vouchers                      string
	// NetworkPolicy peers, as peers() writes them.
	metricsFrom, gatewayOtlpFrom, agentOtlpFrom []string
	agentSA                                     string
	gatewaySA                                   string
	createdSAs                                  []string
	externalSecrets                             []string // Secrets the pods use that the chart does not render
	podScrape                                   bool
	serviceScrape                               bool
	agentPolicy                                 corev1.ServiceInternalTrafficPolicy
	hostPort                                    bool
	agentExtraConfig                            bool
	gwExtraConfig                               bool
}

var expectations = map[string]expect{
	"default": {
		fullname:  "rel-vaultlightstep",
		agentAuth: "kubernetes", agentRole: "otel-agent", agentIdentityRole: "otel-agent",
		gatewayAuth: "kubernetes", gatewayRole: "otel-gateway",
		gatewayVaultAddr: "https://vault.vault.svc:8200",
		tls:              true, generatedCert: true, persistence: true, queueDir: "/var/lib/otelcol/queue", gatewayReplicas: 2,
		audience: "otel-agent",
		agentSA:  "rel-vaultlightstep-agent", gatewaySA: "rel-vaultlightstep-gateway",
		createdSAs: []string{"rel-vaultlightstep-agent", "rel-vaultlightstep-gateway"},
		podScrape:  true, agentPolicy: corev1.ServiceInternalTrafficPolicyLocal,
		metricsFrom: monitoringNS, agentOtlpFrom: everyPod,
		workloadIdentity: true, aliasByUID: true, aliasNameSource: "serviceaccount_uid", unidentified: "pass", vouchers: `["otel-agents"]`,
	},
	"kubernetes-tls": {
		fullname:  "otel",
		agentAuth: "kubernetes", agentRole: "otel-agent-prod", agentMount: "kubernetes-prod", agentIdentityRole: "otel-agent-prod",
		gatewayAuth: "kubernetes", gatewayRole: "otel-gateway-prod",
		gatewayVaultAddr: "https://vault.example.com:8200",
		tls:              true, persistence: true, queueDir: "/data/queue", gatewayReplicas: 3,
		audience:  "7Cjq3vWGPDqjIkrqaw2ldQ4C3A",
		delegated: []string{"otel-agent", "otel-gateway"}, // tokenReviewer client, both log in with kubernetes
		agentSA:   "otel-agent", gatewaySA: "otel-gateway",
		createdSAs:      []string{"otel-agent", "otel-gateway"},
		externalSecrets: []string{"otel-gateway-cert", "otel-ca", "vault-ca"},
		podScrape:       true, agentPolicy: corev1.ServiceInternalTrafficPolicyLocal, hostPort: true,
		metricsFrom:     []string{"ns{kubernetes.io/metadata.name=observability-system} pod{app.kubernetes.io/name=prometheus}"},
		gatewayOtlpFrom: []string{"ns{otel-sidecars=true}"}, agentOtlpFrom: everyPod,
		workloadIdentity: true, aliasByUID: true, aliasNameSource: "serviceaccount_uid", unidentified: "pass", vouchers: `["otel-agents"]`,
	},
	"approle-mesh": {
		fullname:  "rel-vaultlightstep",
		agentAuth: "approle", agentIdentityRole: "otel-agent",
		gatewayAuth:      "approle",
		gatewayVaultAddr: "https://vault.vault.svc:8200",
		tls:              false, persistence: false, queueDir: "/var/lib/otelcol/queue", gatewayReplicas: 1,
		audience: "otel-agent",
		agentSA:  "rel-vaultlightstep-agent", gatewaySA: "rel-vaultlightstep-gateway",
		createdSAs:      []string{"rel-vaultlightstep-agent", "rel-vaultlightstep-gateway"},
		externalSecrets: []string{"otel-agent-approle"},
		serviceScrape:   true, agentPolicy: corev1.ServiceInternalTrafficPolicyCluster,
		agentExtraConfig: true, gwExtraConfig: true,
		metricsFrom: monitoringNS, agentOtlpFrom: everyPod,
		workloadIdentity: true, aliasNameSource: "serviceaccount_name", unidentified: "reject", vouchers: `["otel-agents"]`,
	},
	"vault-agent": {
		fullname:  "rel-vaultlightstep",
		agentAuth: "token", agentTokenFile: "/vault/secrets/token", agentIdentityRole: "otel-agent",
		gatewayAuth:      "agent",
		gatewayVaultAddr: "http://127.0.0.1:8200",
		tls:              true, generatedCert: true, persistence: true, queueDir: "/var/lib/otelcol/queue", gatewayReplicas: 2,
		audience: "otel-agent",
		agentSA:  "rel-vaultlightstep-agent", gatewaySA: "otel-gateway",
		createdSAs: []string{"rel-vaultlightstep-agent"},
		podScrape:  true, agentPolicy: corev1.ServiceInternalTrafficPolicyLocal,
		metricsFrom: monitoringNS, agentOtlpFrom: everyPod,
		vouchers: "[]",
	},
}

// The chart's default NetworkPolicy peers.
var (
	monitoringNS = []string{"ns{kubernetes.io/metadata.name=monitoring}"}
	everyPod     = []string{"ns{}"}
)

func expectationsFor(t *testing.T, set valueSet) expect {
	t.Helper()
	e, ok := expectations[set.name]
	if !ok {
		t.Fatalf("values set %q (%s) has no entry in expectations (expectations_test.go): say what it must render", set.name, set.file)
	}
	return e
}
