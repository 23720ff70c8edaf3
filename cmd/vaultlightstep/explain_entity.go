package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/vault/api"
)

// explainEntity prints an entity's grant chain: the entity, its aliases
// (auth mount and the role, user or service account behind each), its
// groups, every policy that reaches its tokens and where from, and which of
// those grant the identity token role, the Lightstep secret and the audit
// hash.
func (a *app) explainEntity(ctx context.Context, c *explainConfig) error {
	client, logout, err := a.explainLogin(ctx, c)
	if err != nil {
		return err
	}
	defer logout()
	p := writeTo{a.stdout}
	ent, err := client.Logical().ReadWithContext(ctx, "identity/entity/id/"+c.entity)
	if err != nil || ent == nil {
		return fmt.Errorf("entity %s: %v", c.entity, vaultError("read", "identity/entity/id/"+c.entity, orNotFound(err)))
	}
	p.f("entity %s (%s)\n", c.entity, str(ent.Data["name"]))
	if md := mapOf(ent.Data["metadata"]); len(md) > 0 {
		p.f("  metadata: %s\n", sortedPairs(md))
	}
	var sources []policySource
	for _, name := range stringsOf(ent.Data["policies"]) {
		sources = append(sources, policySource{name, "the entity"})
	}
	aliases, _ := ent.Data["aliases"].([]any)
	for _, raw := range aliases {
		alias, _ := raw.(map[string]any)
		sources = append(sources, a.explainAlias(ctx, client, p, alias)...)
	}
	groups := append(stringsOf(ent.Data["direct_group_ids"]), stringsOf(ent.Data["inherited_group_ids"])...)
	for _, gid := range unique(groups) {
		g, err := client.Logical().ReadWithContext(ctx, "identity/group/id/"+gid)
		if err != nil || g == nil {
			p.f("  group %s: not readable (%v)\n", gid, orNotFound(err))
			continue
		}
		p.f("  group %s (%s), policies %s\n", str(g.Data["name"]), gid, strings.Join(stringsOf(g.Data["policies"]), ", "))
		for _, name := range stringsOf(g.Data["policies"]) {
			sources = append(sources, policySource{name, "group " + str(g.Data["name"])})
		}
	}
	wanted := []grantWanted{
		{"the identity token role", "identity/oidc/token/" + c.role, "read"},
		{"the Lightstep token", c.path, "read"},
		{"the audit hash", "sys/audit-hash/file", "update"},
	}
	a.explainPolicies(ctx, client, p, sources, wanted, c.entity)
	return nil
}

// policySource is a policy and where an entity's tokens get it from.
type policySource struct{ name, from string }

// grantWanted is a capability on a path whose granting policy is looked for.
type grantWanted struct{ what, path, capability string }

// explainAlias prints one alias and returns the policies its auth method
// gives the tokens it issues (the role's or user's token_policies).
func (a *app) explainAlias(ctx context.Context, client *api.Client, p writeTo, alias map[string]any) []policySource {
	mount, kind, name := strings.TrimSuffix(str(alias["mount_path"]), "/"), str(alias["mount_type"]), str(alias["name"])
	p.f("  alias %q on %s (%s, accessor %s)", name, mount, kind, str(alias["mount_accessor"]))
	if md := mapOf(alias["metadata"]); len(md) > 0 {
		p.f(", metadata %s", sortedPairs(md))
	}
	p.f("\n")
	role, policies := issuerOf(ctx, client, mount, kind, name, mapOf(alias["metadata"]))
	if role == "" {
		return nil
	}
	p.f("    issued by %s, token policies %s\n", role, strings.Join(policies, ", "))
	out := make([]policySource, 0, len(policies))
	for _, pol := range policies {
		out = append(out, policySource{pol, role})
	}
	return out
}

// issuerOf finds what issues an alias's tokens: the AppRole role whose
// role id is the alias name, the userpass user, the Kubernetes role bound
// to the service account, or the token role allowing the alias.
func issuerOf(ctx context.Context, client *api.Client, mount, kind, name string, md map[string]string) (string, []string) {
	l := client.Logical()
	read := func(path string) map[string]any {
		sec, err := l.ReadWithContext(ctx, path)
		if err != nil || sec == nil {
			return nil
		}
		return sec.Data
	}
	list := func(path string) []string {
		sec, err := l.ListWithContext(ctx, path)
		if err != nil || sec == nil {
			return nil
		}
		return stringsOf(sec.Data["keys"])
	}
	switch kind {
	case "approle":
		for _, r := range list(mount + "/role") {
			if str(read(mount + "/role/" + r + "/role-id")["role_id"]) == name {
				return "AppRole role " + r + " (" + mount + ")", stringsOf(read(mount + "/role/" + r)["token_policies"])
			}
		}
	case "userpass":
		if u := read(mount + "/users/" + name); u != nil {
			return "userpass user " + name + " (" + mount + ")", stringsOf(u["token_policies"])
		}
	case "kubernetes":
		for _, r := range list(mount + "/role") {
			role := read(mount + "/role/" + r)
			if matches(stringsOf(role["bound_service_account_names"]), md["service_account_name"]) &&
				matches(stringsOf(role["bound_service_account_namespaces"]), md["service_account_namespace"]) {
				return "Kubernetes role " + r + " (" + mount + ")", stringsOf(role["token_policies"])
			}
		}
	case "token":
		for _, r := range list("auth/token/roles") {
			role := read("auth/token/roles/" + r)
			if slices.Contains(stringsOf(role["allowed_entity_aliases"]), name) {
				return "token role " + r + " (allowed policies)", stringsOf(role["allowed_policies"])
			}
		}
	}
	return "", nil
}

func matches(bound []string, v string) bool {
	return slices.Contains(bound, "*") || (v != "" && slices.Contains(bound, v))
}

// explainPolicies prints each policy once, where it comes from, and which
// of the wanted grants it makes.
func (a *app) explainPolicies(ctx context.Context, client *api.Client, p writeTo, sources []policySource, wanted []grantWanted, entityID string) {
	from := map[string][]string{}
	var names []string
	for _, s := range sources {
		if _, seen := from[s.name]; !seen {
			names = append(names, s.name)
		}
		from[s.name] = append(from[s.name], s.from)
	}
	p.f("policies:\n")
	granted := map[string][]string{}
	for _, name := range names {
		p.f("  %s (from %s)\n", name, strings.Join(unique(from[name]), "; "))
		sec, err := client.Logical().ReadWithContext(ctx, "sys/policies/acl/"+name)
		if err != nil || sec == nil {
			if name != "default" && name != "root" {
				p.f("    not readable: %v\n", orNotFound(err))
			}
			continue
		}
		rules, err := parsePolicy(str(sec.Data["policy"]), entityID)
		if err != nil {
			p.f("    cannot parse: %v\n", err)
			continue
		}
		for _, w := range wanted {
			if pattern, ok := rules.grants(w.path, w.capability); ok {
				p.f("    grants %s on %s (path %q): %s\n", w.capability, w.path, pattern, w.what)
				granted[w.what] = append(granted[w.what], name)
			}
		}
	}
	for _, w := range wanted {
		if ps := granted[w.what]; len(ps) > 0 {
			p.f("%s (%s %s) is granted by: %s\n", w.what, w.capability, w.path, strings.Join(ps, ", "))
		} else {
			p.f("%s (%s %s) is granted by: none of these policies\n", w.what, w.capability, w.path)
		}
	}
}

// policyRules are a policy's path rules.
type policyRules map[string][]string // path pattern -> capabilities

// parsePolicy reads an ACL policy's path rules, with the entity's id
// filled into templated paths.
func parsePolicy(text, entityID string) (policyRules, error) {
	var doc struct {
		Path map[string]struct {
			Capabilities []string `hcl:"capabilities"`
		} `hcl:"path"`
	}
	if err := hcl.Decode(&doc, text); err != nil {
		return nil, err
	}
	out := policyRules{}
	for pattern, rule := range doc.Path {
		pattern = strings.ReplaceAll(pattern, "{{identity.entity.id}}", entityID)
		out[pattern] = rule.Capabilities
	}
	return out, nil
}

// grants says whether the rules give capability on path, and which
// pattern does: the most specific matching pattern decides, as in Vault
// (an exact path before globs, a longer prefix before a shorter), and
// deny wins within it.
func (r policyRules) grants(path, capability string) (string, bool) {
	best, bestLen := "", -1
	for pattern := range r {
		if n, ok := matchLen(pattern, path); ok && n > bestLen {
			best, bestLen = pattern, n
		}
	}
	if bestLen < 0 {
		return "", false
	}
	caps := r[best]
	return best, !slices.Contains(caps, "deny") && slices.Contains(caps, capability)
}

// matchLen matches a Vault policy path pattern (a trailing * matches any
// rest, + one segment) against path, and says how specific the match is.
func matchLen(pattern, path string) (int, bool) {
	exact := !strings.HasSuffix(pattern, "*")
	pattern = strings.TrimSuffix(pattern, "*")
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if exact && len(ps) != len(xs) || len(ps) > len(xs) {
		return 0, false
	}
	for i, seg := range ps {
		last := i == len(ps)-1
		switch {
		case seg == "+":
		case last && !exact:
			if !strings.HasPrefix(xs[i], seg) {
				return 0, false
			}
		case seg != xs[i]:
			return 0, false
		}
	}
	n := len(pattern)
	if exact {
		n += 1 << 20 // an exact path is more specific than any glob
	}
	return n, true
}

func str(v any) string { s, _ := v.(string); return s }

func stringsOf(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func mapOf(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, x := range m {
		if s, ok := x.(string); ok {
			out[k] = s
		}
	}
	return out
}

func sortedPairs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

func unique(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func orNotFound(err error) error {
	if err == nil {
		return fmt.Errorf("not found")
	}
	return err
}
