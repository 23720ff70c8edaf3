package testbed

import (
	"fmt"
	"path/filepath"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Options shape a deployment; the zero value is the shipped one: two
// workloads, each with an agent, one gateway, Lightstep accepting token v1.
type Options struct {
	// Workloads are the applications, one agent each. Default: payments, checkout.
	Workloads []string
	// GatewayOverlay and AgentOverlay, when set, are merged over the example configs.
	GatewayOverlay, AgentOverlay string
	// RefreshInterval is how often the gateway checks the token's version. Default 500ms.
	RefreshInterval string
	// FirstToken is the Lightstep token written to Vault and accepted first. Default ls-token-v1.
	FirstToken string
	// Gateways is how many gateways run. Default 1. Agents are spread
	// across them, each pinned to one, unless Balanced.
	Gateways int
	// Balanced puts a Balancer in front of the gateways, as users do: every
	// agent sends to it, and a dead gateway's agents reconnect to the others.
	Balanced bool
	// IdentityTokenTTL, when set, replaces the 1h TTL of the agents'
	// identity tokens (Vault role otel-agent): agents fetch a new one at
	// two thirds of it.
	IdentityTokenTTL string
	// Teams, when set, runs the multi-team gateway (gateway-multitenant.yaml)
	// in front of a Lightstep stand-in with one project per team, instead
	// of the single-token gateway; Workloads is then the teams' workloads.
	Teams []Team
}

// Team is one tenant: its workloads, and its first Lightstep token ("" for
// a team whose token is not in Vault yet).
type Team struct {
	Name      string
	Workloads []string
	Token     string
}

// Deployment is the shipped deployment, running for real: Vault (reached
// by every collector through a proxy that can cut it off), the Lightstep
// stand-in and its sink, a gateway from examples/gateway.yaml, and one
// agent from examples/agent.yaml per workload, each with a sender.
type Deployment struct {
	Vault *vaulttest.Server
	// Proxy is how every collector reaches Vault: it counts requests by
	// path and can cut Vault off.
	Proxy    *vaulttest.CountingProxy
	Audience string // the agents' identity token audience
	// AuditLog is the file Vault's audit device `file` writes, enabled
	// before anything else, as production Vaults run.
	AuditLog  string
	Sink      *Sink
	StandIn   *StandIn
	Gateway   *Collector   // the first gateway
	Gateways  []*Collector // all of them
	Balancer  *Balancer    // in front of the gateways, with Options.Balanced
	Agents    []*Collector
	Workloads []Workload
	Senders   []*Sender
	// With Teams: the stand-in's projects, each workload's team (by
	// index), and each team's token writer.
	Projects  *Projects
	TeamOf    []string
	TeamWrite map[string]func(token string) int
	// Rotate writes a new version of the Lightstep token, as an operator
	// with the lightstep-token-writer policy would, and returns its version.
	Rotate func(token string) int
}

// Start runs the whole deployment on loopback; everything stops when t ends.
func Start(t T, o Options) *Deployment {
	t.Helper()
	if len(o.Workloads) == 0 {
		o.Workloads = []string{"payments", "checkout"}
	}
	if o.RefreshInterval == "" {
		o.RefreshInterval = "500ms"
	}
	if o.FirstToken == "" {
		o.FirstToken = "ls-token-v1"
	}
	if o.Gateways == 0 {
		o.Gateways = 1
	}
	d := &Deployment{Vault: vaulttest.Start(t)}
	d.AuditLog = d.Vault.EnableFileAudit(t)
	d.Proxy = vaulttest.NewCountingProxy(t, d.Vault)
	d.Audience = ConfigureVault(t, d.Vault, d.Proxy.Addr)
	if o.IdentityTokenTTL != "" {
		d.Vault.Write(t, "identity/oidc/role/otel-agent", map[string]any{"ttl": o.IdentityTokenTTL})
	}
	gatewayConfig, gatewayRole, lightstep := d.startLightstep(t, &o)
	d.startGateways(t, o, gatewayConfig, gatewayRole, lightstep)
	d.startAgents(t, o)
	return d
}

// startLightstep starts the stand-in for Lightstep (one project, or one per
// team), writes the first tokens, and returns the gateway config, its
// Vault role and the stand-in's address. With teams, o.Workloads becomes
// the teams' workloads.
func (d *Deployment) startLightstep(t T, o *Options) (config, role, addr string) {
	if len(o.Teams) == 0 {
		d.Rotate = TokenWriter(t, d.Vault)
		d.Rotate(o.FirstToken)
		d.Sink = StartSink(t)
		d.StandIn = StartStandIn(t, d.Sink, o.FirstToken)
		return Example("gateway.yaml"), "otel-gateway", d.StandIn.OTLPGRPC
	}
	d.Projects = StartProjects(t)
	d.TeamWrite = map[string]func(string) int{}
	o.Workloads = nil
	for _, team := range o.Teams {
		d.TeamWrite[team.Name] = TeamTokenWriter(t, d.Vault, team.Name)
		if team.Token != "" {
			d.Projects.Accept(team.Name, team.Token)
			d.TeamWrite[team.Name](team.Token)
		}
		for _, w := range team.Workloads {
			o.Workloads = append(o.Workloads, w)
			d.TeamOf = append(d.TeamOf, team.Name)
		}
	}
	return Example("gateway-multitenant.yaml"), "otel-gateway-teams", d.Projects.GRPCAddr
}

// startGateways starts o.Gateways gateways from config, each logging in
// with a secret id of role, and the balancer in front of them if asked.
func (d *Deployment) startGateways(t T, o Options, config, role, lightstep string) {
	for i := range o.Gateways {
		gw := AppRoleCredentials(t, d.Vault, role)
		name := "gateway"
		if o.Gateways > 1 {
			name = fmt.Sprint("gateway-", i)
		}
		d.Gateways = append(d.Gateways, StartCollector(t, name, config, map[string]string{
			"VAULT_ADDR":                 d.Proxy.Addr,
			"VAULT_ROLE_ID_FILE":         gw.RoleIDFile,
			"VAULT_SECRET_ID_FILE":       gw.SecretIDFile,
			"AGENT_AUDIENCE":             d.Audience,
			"QUEUE_DIR":                  filepath.Join(t.TempDir(), "queue"),
			"LIGHTSTEP_ENDPOINT":         lightstep,
			"LIGHTSTEP_INSECURE":         "true",
			"LIGHTSTEP_REFRESH_INTERVAL": o.RefreshInterval,
		}, overlay(o.GatewayOverlay)...))
	}
	d.Gateway = d.Gateways[0]
	if o.Balanced {
		var addrs []string
		for _, gw := range d.Gateways {
			addrs = append(addrs, gw.OTLPGRPC)
		}
		d.Balancer = StartBalancer(t, addrs...)
	}
}

// startAgents starts one agent per workload, each with its own Vault
// role and entity, and the workload's sender.
func (d *Deployment) startAgents(t T, o Options) {
	for i, name := range o.Workloads {
		var w Workload
		if d.TeamOf != nil {
			w = NewTeamWorkload(t, d.Vault, name, d.TeamOf[i])
		} else {
			w = NewWorkload(t, d.Vault, name)
		}
		agent := StartCollector(t, "agent-"+name, Example("agent.yaml"), map[string]string{
			"VAULT_ADDR":           d.Proxy.Addr,
			"VAULT_ROLE_ID_FILE":   w.RoleIDFile,
			"VAULT_SECRET_ID_FILE": w.SecretIDFile,
			"GATEWAY_ENDPOINT":     d.gatewayFor(i),
			"GATEWAY_INSECURE":     "true",
		}, overlay(o.AgentOverlay)...)
		d.Agents = append(d.Agents, agent)
		d.Workloads = append(d.Workloads, w)
		d.Senders = append(d.Senders, NewSender(t, name, i, agent.OTLPGRPC))
	}
}

// gatewayFor is where agent i sends: the balancer, or one gateway.
func (d *Deployment) gatewayFor(i int) string {
	if d.Balancer != nil {
		return d.Balancer.Addr
	}
	return d.Gateways[i%len(d.Gateways)].OTLPGRPC
}

func overlay(path string) []string {
	if path == "" {
		return nil
	}
	return []string{path}
}

// arrived says whether a span reached the backend (any project, with teams).
func (d *Deployment) arrived(id pcommon.SpanID) bool {
	if d.Projects != nil {
		return len(d.Projects.Landed(id)) > 0
	}
	_, ok := d.Sink.Span(id)
	return ok
}

// AllArrived says whether every span any workload's agent took has reached
// the backend, and how many were sent.
func (d *Deployment) AllArrived() (bool, int) {
	sent := 0
	all := true
	for _, s := range d.Senders {
		for _, id := range s.Sent() {
			sent++
			all = all && d.arrived(id)
		}
	}
	return all, sent
}

// Lost counts spans the workloads sent that did not arrive, plus spans of
// requests their agents never took.
func (d *Deployment) Lost(perRequest int) int {
	lost := 0
	for _, s := range d.Senders {
		for _, id := range s.Sent() {
			if !d.arrived(id) {
				lost++
			}
		}
		lost += s.Errors() * perRequest
	}
	return lost
}
