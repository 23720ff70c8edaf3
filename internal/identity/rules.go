package identity

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// An identity's attributes beyond the entity id and namespace are filled by
// rules, each naming an attribute and where its value comes from, as
// k8sattributesprocessor fills a pod's attributes from extract rules:
//
//	claim:<name>           a claim of the identity token (identity_token mode);
//	                       <a>.<b> walks into an object claim
//	entity:name            the entity's name
//	entity:metadata.<key>  one key of the entity's metadata
//	entity:groups          the names of the entity's groups, joined with ","
//	token:policies         the token's and its entity's policies, joined with ","
//	token:meta.<key>       one key of the token's metadata (e.g. role_name)
//
// Lists are joined with ",", as the Collector's auth-context consumers
// expect strings.

// SourceKind is where a rule reads.
type SourceKind int

const (
	FromClaim SourceKind = iota + 1
	FromEntityName
	FromEntityMetadata
	FromEntityGroups
	FromTokenPolicies
	FromTokenMeta
)

// Source is where one attribute's value comes from.
type Source struct {
	Kind SourceKind
	Arg  string // claim path, metadata key
}

// ParseSource reads a source such as "claim:team" or "entity:metadata.team".
func ParseSource(s string) (Source, error) {
	kind, arg, _ := strings.Cut(s, ":")
	switch {
	case kind == "claim" && arg != "":
		return Source{FromClaim, arg}, nil
	case kind == "entity" && arg == "name":
		return Source{Kind: FromEntityName}, nil
	case kind == "entity" && arg == "groups":
		return Source{Kind: FromEntityGroups}, nil
	case kind == "entity" && strings.HasPrefix(arg, "metadata.") && len(arg) > len("metadata."):
		return Source{FromEntityMetadata, strings.TrimPrefix(arg, "metadata.")}, nil
	case kind == "token" && arg == "policies":
		return Source{Kind: FromTokenPolicies}, nil
	case kind == "token" && strings.HasPrefix(arg, "meta.") && len(arg) > len("meta."):
		return Source{FromTokenMeta, strings.TrimPrefix(arg, "meta.")}, nil
	}
	return Source{}, fmt.Errorf("unknown source %q (want claim:<name>, entity:name, entity:metadata.<key>, entity:groups, token:policies or token:meta.<key>)", s)
}

func (s Source) String() string {
	switch s.Kind {
	case FromClaim:
		return "claim:" + s.Arg
	case FromEntityName:
		return "entity:name"
	case FromEntityMetadata:
		return "entity:metadata." + s.Arg
	case FromEntityGroups:
		return "entity:groups"
	case FromTokenPolicies:
		return "token:policies"
	case FromTokenMeta:
		return "token:meta." + s.Arg
	}
	return "?"
}

// Rule fills one attribute.
type Rule struct {
	Key    string
	Source Source
}

// Rules fill an identity's attributes.
type Rules []Rule

// ParseRules reads a map of attribute name to source, checking that each
// name is an identity attribute other than the two every identity has.
// The rules come out sorted by name.
func ParseRules(m map[string]string) (Rules, error) {
	rules := make(Rules, 0, len(m))
	for key, src := range m {
		if err := CheckAttributeName(key); err != nil {
			return nil, err
		}
		s, err := ParseSource(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		rules = append(rules, Rule{key, s})
	}
	slices.SortFunc(rules, func(a, b Rule) int { return strings.Compare(a.Key, b.Key) })
	return rules, nil
}

// CheckAttributeName says why key cannot be a rule-filled attribute.
func CheckAttributeName(key string) error {
	switch {
	case !strings.HasPrefix(key, Prefix) || len(key) == len(Prefix):
		return fmt.Errorf("%q: identity attributes are named vault.<name>", key)
	case key == EntityID || key == Namespace || key == Tenant:
		return fmt.Errorf("%q: always set by the extension, not by a rule", key)
	}
	return nil
}

// ConventionalSource is where this collector's own identity reads an
// attribute a processor asks for, by the attribute's name.
func ConventionalSource(key string) (Source, bool) {
	switch {
	case key == EntityName:
		return Source{Kind: FromEntityName}, true
	case key == Groups:
		return Source{Kind: FromEntityGroups}, true
	case key == Policies:
		return Source{Kind: FromTokenPolicies}, true
	case strings.HasPrefix(key, MetadataPrefix) && len(key) > len(MetadataPrefix):
		return Source{FromEntityMetadata, strings.TrimPrefix(key, MetadataPrefix)}, true
	}
	return Source{}, false
}

// Needs says whether any rule reads from kind.
func (r Rules) Needs(kinds ...SourceKind) bool {
	return slices.ContainsFunc(r, func(rule Rule) bool { return slices.Contains(kinds, rule.Source.Kind) })
}

// Facts are what a verifier learned about one identity.
type Facts struct {
	Claims         map[string]any // identity_token mode
	EntityName     string
	EntityMetadata map[string]string
	GroupNames     []string
	Policies       []string
	TokenMeta      map[string]string
}

// Apply fills the attributes the rules name; those without a value are left out.
func (r Rules) Apply(f Facts) []Attribute {
	out := make([]Attribute, 0, len(r))
	for _, rule := range r {
		var v string
		switch rule.Source.Kind {
		case FromClaim:
			v = claimString(f.Claims, rule.Source.Arg)
		case FromEntityName:
			v = f.EntityName
		case FromEntityMetadata:
			v = f.EntityMetadata[rule.Source.Arg]
		case FromEntityGroups:
			v = strings.Join(f.GroupNames, ",")
		case FromTokenPolicies:
			v = strings.Join(f.Policies, ",")
		case FromTokenMeta:
			v = f.TokenMeta[rule.Source.Arg]
		}
		if v != "" {
			out = append(out, Attribute{rule.Key, v})
		}
	}
	return out
}

// claimString reads a claim as a string: a string, a number or a boolean as
// written, a list of those joined with ",". A name not found as a top-level
// claim is followed through objects at each ".".
func claimString(claims map[string]any, name string) string {
	v, ok := claims[name]
	if !ok {
		var cur any = claims
		for part := range strings.SplitSeq(name, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				return ""
			}
			cur = m[part]
		}
		v = cur
	}
	switch x := v.(type) {
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if s := scalarString(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ",")
	default:
		return scalarString(x)
	}
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}
