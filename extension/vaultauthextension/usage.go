package vaultauthextension

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.uber.org/zap"
)

// job is what an instance does, and so what it may be used for.
type job struct {
	block     string // the block that chose the job: client, server, or "" (identity only)
	exporters bool   // authenticates exporters (client)
	receivers bool   // authenticates receivers (server)
}

var (
	clientJob   = job{block: "client", exporters: true}
	serverJob   = job{block: "server", receivers: true}
	identityJob = job{}
)

var _ extensioncapabilities.ConfigSnapshotWatcher = (*vaultLink)(nil)

// NotifyConfigSnapshot checks, before any pipeline starts, that every
// component using this instance uses it for a job it does: a receiver
// pointed at an instance without a server block, an exporter at one without
// a client block, or a vaultidentity processor (from: extension) at one that
// does not log in would otherwise fail later, request by request.
func (l *vaultLink) NotifyConfigSnapshot(_ context.Context, snapshot extensioncapabilities.ConfigSnapshot) error {
	conf := snapshot.Effective()
	if conf == nil {
		return nil
	}
	used := pipelineComponents(conf)
	var errs []error
	for _, kind := range []string{"receivers", "exporters"} {
		comps, _ := conf.Get(kind).(map[string]any)
		for _, name := range sortedKeys(comps) {
			if !used[kind][name] {
				continue
			}
			for _, path := range authenticatorPaths(comps[name], l.id.String(), nil) {
				where := kind + "::" + name + "::" + path
				if kind == "receivers" && l.job.receivers && !listsGuard(conf.Get(strings.TrimSuffix(where, "::auth")+"::middlewares")) {
					l.logger.Warn("a receiver authenticated by this instance has no vaultauth guard: what senders send is decoded without "+
						"bound (decoding takes up to ~75 times a body's size, and OTLP/JSON any depth); add "+
						"middlewares: [{id: "+l.id.String()+"}] beside its auth block", zap.String("receiver", name), zap.String("at", where))
				}
				switch {
				case kind == "receivers" && !l.job.receivers:
					errs = append(errs, fmt.Errorf("%s has no server block, but receiver %q uses it as its authenticator (%s): "+
						"use a vaultauth instance with a server block there", l.id, name, where))
				case kind == "exporters" && !l.job.exporters:
					errs = append(errs, fmt.Errorf("%s has no client block, but exporter %q uses it as its authenticator (%s): "+
						"use a vaultauth instance with a client block there", l.id, name, where))
				case kind == "exporters" && l.hasTenants():
					errs = append(errs, tenantBatching(conf, name)...)
					errs = append(errs, tenantGate(conf, name, l.id.String())...)
					errs = append(errs, parkChecks(conf, name, l.id.String(), l.conf.Client.Get().Tenants.Get().Park)...)
				}
			}
		}
	}
	procs, _ := conf.Get("processors").(map[string]any)
	for _, name := range sortedKeys(procs) {
		p, _ := procs[name].(map[string]any)
		if !used["processors"][name] || !strings.HasPrefix(name, "vaultidentity") || p["from"] != "extension" || p["extension"] != l.id.String() {
			continue
		}
		if !l.conf.hasLogin() {
			errs = append(errs, fmt.Errorf("%s has no auth block, but processor %q (from: extension) needs this collector's "+
				"own Vault identity from it: give %s an auth block", l.id, name, l.id))
		}
	}
	return errors.Join(errs...)
}

// hasTenants says whether this is a client that routes by tenant.
func (l *vaultLink) hasTenants() bool {
	return l.job.exporters && l.conf.Client.Get().Tenants.HasValue()
}

// tenantBatching checks that nothing merges data of several tenants on the
// way to exporter name: its sending queue's batching, and batch processors
// in its pipelines, must partition by the tenant key. (At run time such a
// batch names no tenant and is refused; this says so before any is made.)
func tenantBatching(conf *confmap.Conf, exporter string) []error {
	var errs []error
	qb := "exporters::" + exporter + "::sending_queue::batch"
	queueOn := conf.Get("exporters::"+exporter+"::sending_queue::enabled") != false
	if queueOn && conf.IsSet(qb) && !listsTenantKey(conf.Get(qb+"::partition::metadata_keys")) {
		errs = append(errs, fmt.Errorf("exporter %q batches in its sending queue without partitioning by tenant: add %q to %s::partition::metadata_keys, "+
			"or each batch would mix tenants and be refused", exporter, TenantMetadataKey, qb))
	}
	for pname, procs := range pipelinesExporting(conf, exporter) {
		for _, id := range procs {
			if isKind(id, "batch") && !listsTenantKey(conf.Get("processors::"+id+"::metadata_keys")) {
				errs = append(errs, fmt.Errorf("processor %q in pipeline %q batches without the tenant: add %q to processors::%s::metadata_keys",
					id, pname, TenantMetadataKey, id))
			}
		}
	}
	return errs
}

// pipelinesExporting yields, in name order, each pipeline that exports to
// exporter, with its processors' ids.
func pipelinesExporting(conf *confmap.Conf, exporter string) iter.Seq2[string, []string] {
	return func(yield func(string, []string) bool) {
		pipelines, _ := conf.Get("service::pipelines").(map[string]any)
		for _, pname := range sortedKeys(pipelines) {
			p, _ := pipelines[pname].(map[string]any)
			if !containsString(p["exporters"], exporter) {
				continue
			}
			var procs []string
			list, _ := p["processors"].([]any)
			for _, proc := range list {
				id, _ := proc.(string)
				procs = append(procs, id)
			}
			if !yield(pname, procs) {
				return
			}
		}
	}
}

// isKind says whether a component id ("batch", "batch/x") is of type kind.
func isKind(id, kind string) bool { return id == kind || strings.HasPrefix(id, kind+"/") }

// tenantGate checks that every pipeline exporting through this tenants
// client holds, at its door, the requests of tenants without a credential
// (vaultidentity tenant_credentials). Otherwise their exports would wait in
// the gateway's own queue, retried by its consumers, and a few such batches
// would hold up every other tenant's exports.
func tenantGate(conf *confmap.Conf, exporter, id string) []error {
	var errs []error
	for pname, procs := range pipelinesExporting(conf, exporter) {
		gated := false
		for _, name := range procs {
			if isKind(name, "vaultidentity") {
				gated = gated || fmt.Sprint(conf.Get("processors::"+name+"::tenant_credentials")) == id
			}
		}
		if !gated {
			errs = append(errs, fmt.Errorf("pipeline %q exports through %s, which sends each tenant's own token, but no vaultidentity processor "+
				"in it holds the requests of tenants whose token is not ready: set processors::<vaultidentity>::tenant_credentials: %s "+
				"(otherwise one tenant without a token stalls every tenant's exports)", pname, id, id))
		}
	}
	return errs
}

// listsGuard says whether a middlewares list holds a vaultauth instance.
func listsGuard(v any) bool {
	list, _ := v.([]any)
	for _, m := range list {
		entry, _ := m.(map[string]any)
		if id := fmt.Sprint(entry["id"]); isKind(id, "vaultauth") {
			return true
		}
	}
	return false
}

// parkChecks checks that exporter name can park a tenant's exports: a gRPC
// exporter lists the instance in its middlewares (the park sees its calls
// there), and a persistent sending queue has a persistent park beside it.
func parkChecks(conf *confmap.Conf, exporter, id string, park ParkConfig) []error {
	var errs []error
	if (isKind(exporter, "otlp_grpc") || isKind(exporter, "otlp")) && !listsID(conf.Get("exporters::"+exporter+"::middlewares"), id) {
		errs = append(errs, fmt.Errorf("exporter %q sends each tenant's token through %s over gRPC but does not list it in middlewares: "+
			"add exporters::%s::middlewares: [{id: %s}], so that a tenant whose exports cannot be sent is parked "+
			"instead of holding the consumers every tenant shares", exporter, id, exporter, id))
	}
	if queue := conf.Get("exporters::" + exporter + "::sending_queue::storage"); queue != nil && park.Storage == nil {
		errs = append(errs, fmt.Errorf("exporter %q keeps its queue in %v, but %s parks tenants' exports in memory, where a restart "+
			"would lose them: set extensions::%s::client::tenants::park::storage (e.g. to %v)", exporter, queue, id, id, queue))
	}
	return errs
}

// listsID says whether a middlewares list holds id.
func listsID(v any, id string) bool {
	list, _ := v.([]any)
	for _, m := range list {
		if entry, _ := m.(map[string]any); fmt.Sprint(entry["id"]) == id {
			return true
		}
	}
	return false
}

func listsTenantKey(v any) bool {
	list, _ := v.([]any)
	for _, k := range list {
		if s, ok := k.(string); ok && strings.EqualFold(s, TenantMetadataKey) {
			return true
		}
	}
	return false
}

func containsString(v any, want string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x == want {
			return true
		}
	}
	return false
}

// pipelineComponents lists the components each kind has in some pipeline
// (components not in a pipeline are never started).
func pipelineComponents(conf *confmap.Conf) map[string]map[string]bool {
	used := map[string]map[string]bool{"receivers": {}, "processors": {}, "exporters": {}}
	pipelines, _ := conf.Get("service::pipelines").(map[string]any)
	for _, p := range pipelines {
		pm, _ := p.(map[string]any)
		for kind := range used {
			list, _ := pm[kind].([]any)
			for _, id := range list {
				if s, ok := id.(string); ok {
					used[kind][s] = true
				}
			}
		}
	}
	return used
}

// authenticatorPaths finds every auth::authenticator equal to id in a
// component's config, and returns the key paths of those auth blocks.
func authenticatorPaths(v any, id string, path []string) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	if auth, ok := m["auth"].(map[string]any); ok && fmt.Sprint(auth["authenticator"]) == id {
		out = append(out, strings.Join(append(path, "auth"), "::"))
	}
	for _, k := range sortedKeys(m) {
		out = append(out, authenticatorPaths(m[k], id, append(append([]string(nil), path...), k))...)
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
