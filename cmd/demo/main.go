// Command demo runs the whole deployment on this machine and says what
// happened: a Vault dev server seeded like the end-to-end test, a Lightstep
// stand-in, a gateway and one agent per workload, a few hundred spans from
// two workloads, and a Lightstep token rotation in the middle. It stops
// everything it started. Run it with `make demo`.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/vaultlightstep/vaultlightstep/internal/deploy"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

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

	step("starting a Vault %s dev server on 127.0.0.1", vaulttest.Version)
	v := vaulttest.Start(r)
	audience := deploy.ConfigureVault(r, v, v.Addr)
	step("configured Vault from examples/vault: AppRole roles, least-privilege policies, identity token role otel-agent")
	rotate := deploy.TokenWriter(r, v)
	rotate("ls-demo-token-v1")
	step("stored Lightstep access token v1 in KV v2 at secret/lightstep/prod (as lightstep-token-writer)")

	sink := deploy.StartSink(r)
	standIn := deploy.StartStandIn(r, sink, "ls-demo-token-v1")
	step("started the Lightstep stand-in on %s (accepts: v1)", standIn.OTLPGRPC)
	gw := deploy.AppRoleCredentials(r, v, "otel-gateway")
	gateway := deploy.StartCollector(r, "gateway", deploy.Example("gateway.yaml"), map[string]string{
		"VAULT_ADDR": v.Addr, "VAULT_ROLE_ID_FILE": gw.RoleIDFile, "VAULT_SECRET_ID_FILE": gw.SecretIDFile,
		"AGENT_AUDIENCE": audience, "QUEUE_DIR": filepath.Join(r.TempDir(), "queue"),
		"LIGHTSTEP_ENDPOINT": standIn.OTLPGRPC, "LIGHTSTEP_INSECURE": "true", "LIGHTSTEP_REFRESH_INTERVAL": "2s",
	})
	step("started the gateway (examples/gateway.yaml) on %s", gateway.OTLPGRPC)

	var workloads []deploy.Workload
	var senders []*deploy.Sender
	for i, name := range []string{"payments", "checkout"} {
		w := deploy.NewWorkload(r, v, name)
		agent := deploy.StartCollector(r, "agent-"+name, deploy.Example("agent.yaml"), map[string]string{
			"VAULT_ADDR": v.Addr, "VAULT_ROLE_ID_FILE": w.RoleIDFile, "VAULT_SECRET_ID_FILE": w.SecretIDFile,
			"GATEWAY_ENDPOINT": gateway.OTLPGRPC, "GATEWAY_INSECURE": "true",
		})
		step("started the agent of workload %q (examples/agent.yaml) on %s", name, agent.OTLPGRPC)
		workloads = append(workloads, w)
		senders = append(senders, deploy.NewSender(r, name, i, agent.OTLPGRPC))
	}

	const requests, perRequest = 20, 10
	step("sending %d spans from each workload, each with a forged vault.entity.id; rotating the token halfway", requests*perRequest)
	var wg sync.WaitGroup
	halfway := make(chan struct{}, len(senders))
	for _, s := range senders {
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
	for range senders {
		<-halfway
	}
	standIn.Accept("ls-demo-token-v1", "ls-demo-token-v2")
	rotated := time.Now()
	rotate("ls-demo-token-v2")
	step("rotation: Lightstep accepts v1 and v2; wrote v2 to Vault")
	pickedUp := waitFor(60*time.Second, func() bool {
		version, _ := gateway.Metric("otelcol_vaultauth_secret_version")
		return version == 2
	})
	if !pickedUp {
		r.Fatalf("the gateway did not pick up token v2 within 60s")
	}
	took := time.Since(rotated)
	standIn.Accept("ls-demo-token-v2")
	step("rotation: the gateway sends v2 (after %.1fs); Lightstep now accepts only v2", took.Seconds())
	wg.Wait()

	var sent int
	arrived := waitFor(60*time.Second, func() bool {
		sent = 0
		for _, s := range senders {
			sent += len(s.Sent())
			if len(sink.Missing(s.Sent())) > 0 {
				return false
			}
		}
		return true
	})
	lost := 0
	for _, s := range senders {
		lost += len(sink.Missing(s.Sent())) + s.Errors()*perRequest
	}
	if !arrived && lost == 0 {
		lost = -1
	}
	summary(workloads, senders, sink, sent, lost, took)
	if token := os.Getenv("LS_ACCESS_TOKEN"); token != "" {
		realLightstep()
	}
}

func summary(workloads []deploy.Workload, senders []*deploy.Sender, sink *deploy.Sink, sent, lost int, took time.Duration) {
	fmt.Println()
	fmt.Println("Summary")
	fmt.Println("-------")
	fmt.Printf("spans sent by the workloads:     %d\n", sent)
	fmt.Printf("spans that reached the backend:  %d\n", sink.Count())
	fmt.Printf("spans lost:                      %d\n", lost)
	fmt.Printf("token rotation picked up after:  %.1fs (gateway refresh_interval 2s)\n", took.Seconds())
	fmt.Println()
	fmt.Println("spans per Vault entity (as stamped by the gateway):")
	for i, w := range workloads {
		n := 0
		for _, id := range senders[i].Sent() {
			if res, ok := sink.Resource(id); ok && res["vault.entity.id"] == w.EntityID {
				n++
			}
		}
		fmt.Printf("  %-10s entity %s  %d spans\n", w.Name, w.EntityID, n)
	}
	if ids := senders[0].Sent(); len(ids) > 0 {
		res, _ := sink.Resource(ids[len(ids)-1])
		keys := make([]string, 0, len(res))
		for k := range res {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Printf("\nresource attributes of one span from %q as it arrived\n", workloads[0].Name)
		fmt.Printf("(the workload sent vault.entity.id=%q; the agent and the gateway replaced it):\n", deploy.ForgedEntity)
		for _, k := range keys {
			fmt.Printf("  %-18s %v\n", k, res[k])
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
