// Command demo runs the whole deployment on this machine and says what
// happened: a Vault dev server seeded like the end-to-end test, a Lightstep
// stand-in, a gateway and one agent per workload, a few hundred spans from
// two workloads, a Lightstep token rotation in the middle, and the audit
// trail from one arrived span to the Vault request and policy behind its
// credential. It stops
// everything it started. Run it with `make demo`.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// command is the vaultlightstep command `make demo` builds.
var command = filepath.Join(testbed.RepoRoot(), "bin", "vaultlightstep")

// vaultlightstep runs the command, printing it and its output indented.
func vaultlightstep(r *runner, env []string, args ...string) {
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = a
		if strings.ContainsAny(a, " ,") {
			shown[i] = "'" + a + "'"
		}
	}
	fmt.Printf("\n  $ vaultlightstep %s\n", strings.Join(shown, " "))
	cmd := exec.Command(command, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Println("    " + line)
	}
	if err != nil {
		r.Fatalf("vaultlightstep %s: %v", args[0], err)
	}
}

// rotate writes token with `vaultlightstep rotate --reason`, logged in as
// lightstep-token-writer, and waits with it until the gateway sends it.
func rotate(r *runner, d *testbed.Deployment, token, reason string) {
	writer := testbed.AppRoleCredentials(r, d.Vault, "lightstep-token-writer")
	tokenFile := filepath.Join(r.TempDir(), "new-token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		r.Fatalf("token file: %v", err)
	}
	vaultlightstep(r, []string{"VAULT_ADDR=" + d.Vault.Addr},
		"rotate", "--path", "secret/data/lightstep/prod", "--token-file", tokenFile, "--reason", reason,
		"--approle-role-id-file", writer.RoleIDFile, "--approle-secret-id-file", writer.SecretIDFile,
		"--collectors", fmt.Sprintf("http://127.0.0.1:%d/metrics", d.Gateway.MetricsPort), "--interval", "500ms", "--timeout", "60s")
}

// auditTrail answers "who granted that token?" for one arrived span and for
// the Lightstep token in use, with the commands an auditor runs.
func auditTrail(r *runner, d *testbed.Deployment) {
	ids := d.Senders[0].Sent()
	if len(ids) == 0 {
		return
	}
	span, _ := d.Sink.Span(ids[len(ids)-1])
	hmac, entity := span.Resource.One("vault.credential.hmac"), span.Resource.One("vault.entity.id")
	fmt.Println("Audit trail (docs/audit.md): who granted that token?")
	fmt.Println("-----------------------------------------------------")
	fmt.Printf("one span from %q arrived with vault.entity.id=%s\nand vault.credential.hmac=%s (the audit log key of its credential)\n", d.Workloads[0].Name, entity, hmac)
	env := []string{"VAULT_ADDR=" + d.Vault.Addr, "VAULT_TOKEN=" + d.Vault.RootToken}
	fmt.Println("\nthe Vault request that issued the credential it was sent with:")
	vaultlightstep(r, env, "explain", "--audit-log", d.AuditLog, "--credential-hmac", hmac)
	fmt.Println("\nwhy that entity may get it: its grant chain, and the policy that allows it:")
	vaultlightstep(r, env, "explain", "--entity", entity)
	fmt.Println("\nthe Lightstep token in use (version 2): who wrote it, and why:")
	vaultlightstep(r, env, "explain", "--audit-log", d.AuditLog, "--version", "2", "--path", "secret/data/lightstep/prod")
	fmt.Println()
}

func main() {
	r := &runner{}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		r.Fatalf("interrupted")
	}()
	run(r)
	r.cleanup()
}

func run(r *runner) {
	step := func(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

	step("starting Vault %s (dev server on 127.0.0.1), the Lightstep stand-in, a gateway and one agent per workload", vaulttest.Version)
	d := testbed.Start(r, testbed.Options{FirstToken: "ls-demo-token-v1", RefreshInterval: "2s"})
	step("Vault configured from examples/vault: AppRole roles, least-privilege policies, identity token role otel-agent")
	step("Lightstep access token v1 stored in KV v2 at secret/lightstep/prod (as lightstep-token-writer)")
	step("Lightstep stand-in on %s (accepts: v1); gateway (examples/gateway.yaml) on %s", d.StandIn.OTLPGRPC, d.Gateway.OTLPGRPC)
	for i, w := range d.Workloads {
		step("agent of workload %q (examples/agent.yaml) on %s", w.Name, d.Agents[i].OTLPGRPC)
	}

	const requests, perRequest = 20, 10
	step("sending %d spans from each workload, each with a forged vault.entity.id; rotating the token halfway", requests*perRequest)
	var wg sync.WaitGroup
	halfway := make(chan struct{}, len(d.Senders))
	for _, s := range d.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range requests {
				if i == requests/2 {
					halfway <- struct{}{}
				}
				s.Send(perRequest)
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	for range d.Senders {
		<-halfway
	}
	d.StandIn.Accept("ls-demo-token-v1", "ls-demo-token-v2")
	rotated := time.Now()
	step("rotation: Lightstep accepts v1 and v2; writing v2 to Vault with vaultlightstep rotate, as lightstep-token-writer")
	rotate(r, d, "ls-demo-token-v2", "demo: quarterly rotation, ticket SEC-42")
	pickedUp := waitFor(60*time.Second, func() bool {
		version, _ := d.Gateway.Metric("otelcol_vaultauth_secret_version")
		return version == 2
	})
	if !pickedUp {
		r.Fatalf("the gateway did not pick up token v2 within 60s")
	}
	took := time.Since(rotated)
	d.StandIn.Accept("ls-demo-token-v2")
	step("rotation: the gateway sends v2 (after %.1fs); Lightstep now accepts only v2", took.Seconds())
	wg.Wait()

	arrived := waitFor(60*time.Second, func() bool { all, _ := d.AllArrived(); return all })
	_, sent := d.AllArrived()
	lost := d.Lost(perRequest)
	if !arrived && lost == 0 {
		lost = -1
	}
	summary(d, sent, lost, took)
	auditTrail(r, d)
	teams(r, step)
	if token := os.Getenv("LS_ACCESS_TOKEN"); token != "" {
		realLightstep()
	}
}

// teams runs the multi-team gateway: two teams, each with its own Lightstep
// project and token in Vault, and shows every span landing in its own
// team's project only.
func teams(r *runner, step func(string, ...any)) {
	step("one gateway, many teams (examples/gateway-multitenant.yaml): teams payments and checkout, one Lightstep project each")
	d := testbed.Start(r, testbed.Options{Teams: []testbed.Team{
		{Name: "payments", Workloads: []string{"payments-api"}, Token: "ls-payments-v1"},
		{Name: "checkout", Workloads: []string{"checkout-web"}, Token: "ls-checkout-v1"},
	}})
	const requests, perRequest = 10, 10
	for range requests {
		for _, s := range d.Senders {
			s.Send(perRequest)
		}
	}
	waitFor(60*time.Second, func() bool { all, _ := d.AllArrived(); return all })
	fmt.Println()
	fmt.Println("spans per project (each team's data, sent with its own token; senders forged vault.tenant):")
	for i, s := range d.Senders {
		landed := map[string]int{}
		for _, id := range s.Sent() {
			for _, project := range d.Projects.Landed(id) {
				landed[project]++
			}
		}
		cross := 0
		for project, n := range landed {
			if project != d.TeamOf[i] {
				cross += n
			}
		}
		fmt.Printf("  team %-9s workload %-13s sent %3d, landed in its project %3d, in another project %d\n",
			d.TeamOf[i], s.Workload, len(s.Sent()), landed[d.TeamOf[i]], cross)
	}
	fmt.Println()
}

func summary(d *testbed.Deployment, sent, lost int, took time.Duration) {
	fmt.Println()
	fmt.Println("Summary")
	fmt.Println("-------")
	fmt.Printf("spans sent by the workloads:     %d\n", sent)
	fmt.Printf("spans that reached the backend:  %d\n", d.Sink.Count())
	fmt.Printf("spans lost:                      %d\n", lost)
	fmt.Printf("token rotation picked up after:  %.1fs (gateway refresh_interval 2s)\n", took.Seconds())
	fmt.Println()
	fmt.Println("spans per Vault entity (as stamped by the gateway, each key exactly once):")
	for i, w := range d.Workloads {
		n := 0
		for _, id := range d.Senders[i].Sent() {
			if span, ok := d.Sink.Span(id); ok && span.Resource.One("vault.entity.id") == w.EntityID {
				n++
			}
		}
		fmt.Printf("  %-10s entity %s  %d spans\n", w.Name, w.EntityID, n)
	}
	if ids := d.Senders[0].Sent(); len(ids) > 0 {
		span, _ := d.Sink.Span(ids[len(ids)-1])
		attrs := append(testbed.Attributes(nil), span.Resource...)
		sort.SliceStable(attrs, func(i, j int) bool { return attrs[i].Key < attrs[j].Key })
		fmt.Printf("\nresource attributes of one span from %q as it arrived\n", d.Workloads[0].Name)
		fmt.Printf("(the workload sent vault.entity.id=%q; the agent and the gateway replaced it):\n", testbed.ForgedEntity)
		for _, kv := range attrs {
			fmt.Printf("  %-22s %s\n", kv.Key, kv.Value)
		}
	}
	fmt.Println()
}

func realLightstep() {
	fmt.Println(`LS_ACCESS_TOKEN is set. To send to real Lightstep (not run by the demo):
  1. vault kv put secret/lightstep/prod access_token="$LS_ACCESS_TOKEN"
  2. run the gateway with examples/gateway.yaml, without LIGHTSTEP_ENDPOINT and
     LIGHTSTEP_INSECURE, so it exports to ingest.lightstep.com:443 over TLS:
       VAULT_ADDR=... VAULT_ROLE_ID_FILE=... VAULT_SECRET_ID_FILE=... \
       AGENT_AUDIENCE=... QUEUE_DIR=/var/lib/otelcol/queue \
       bin/otelcol-vaultlightstep --config examples/gateway.yaml
  The token never appears in a config file, an environment variable or a log.`)
}

func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cond()
}

// runner lets the demo use the test harness: it is a vaulttest.T that
// prints and exits on failure, and runs cleanups (stopping every process it
// started) at the end.
type runner struct {
	mu       sync.Mutex
	cleanups []func()
}

func (r *runner) Helper() {}

func (r *runner) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "demo failed: "+format+"\n", args...)
	r.cleanup()
	os.Exit(1)
}

// Skipf fails too: the demo needs every server it starts.
func (r *runner) Skipf(format string, args ...any) { r.Fatalf(format, args...) }

func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runner) TempDir() string {
	d, err := os.MkdirTemp("", "vaultlightstep-demo-")
	if err != nil {
		r.Fatalf("temp dir: %v", err)
	}
	r.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// cleanup runs the cleanups once, newest first, as testing does.
func (r *runner) cleanup() {
	r.mu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
