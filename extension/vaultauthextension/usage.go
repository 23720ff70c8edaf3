package vaultauthextension

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
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
				switch {
				case kind == "receivers" && !l.job.receivers:
					errs = append(errs, fmt.Errorf("%s has no server block, but receiver %q uses it as its authenticator (%s): "+
						"use a vaultauth instance with a server block there", l.id, name, where))
				case kind == "exporters" && !l.job.exporters:
					errs = append(errs, fmt.Errorf("%s has no client block, but exporter %q uses it as its authenticator (%s): "+
						"use a vaultauth instance with a client block there", l.id, name, where))
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
