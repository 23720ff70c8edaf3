package identity

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// IsReserved is "vault" or "vault." + anything, compared without regard to
// letter case, exactly as strings.EqualFold would say it.
func FuzzIsReserved(f *testing.F) {
	for _, seed := range []string{"vault", "VAULT", "vault.", "Vault.Entity.Id", "vaulty", "vault_x", "vaul", "", "ſault", "\u212aey"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, k string) {
		want := strings.EqualFold(k, "vault") || (len(k) >= 6 && strings.EqualFold(k[:6], "vault."))
		if got := IsReserved(k); got != want {
			t.Fatalf("IsReserved(%q) = %v, want %v", k, got, want)
		}
	})
}

func TestNewKeepsOneValuePerKey(t *testing.T) {
	id := New("ent-1", "root",
		Attribute{Key: EntityName, Value: "payments"},
		Attribute{Key: EntityName, Value: "second"},
		Attribute{Key: EntityID, Value: "forged"},
		Attribute{Key: "team", Value: "not reserved: dropped"},
		Attribute{Key: Policies, Value: ""},
	)
	assert.Equal(t, []Attribute{{EntityID, "ent-1"}, {Namespace, "root"}, {EntityName, "payments"}}, id.Attributes())
	assert.Equal(t, []string{EntityID, Namespace, EntityName, Subject}, AuthData{Identity: id}.GetAttributeNames())
	v, ok := id.Get(Subject)
	assert.True(t, ok && v == "ent-1")
	withTenant := id.With(Attribute{Key: Tenant, Value: "team-a"})
	v, _ = withTenant.Get(Tenant)
	assert.Equal(t, "team-a", v)
	assert.Len(t, withTenant.Attributes(), 4)
}

func TestRules(t *testing.T) {
	rules, err := ParseRules(map[string]string{
		"vault.entity.metadata.team": "claim:team",
		"vault.groups":               "claim:groups",
		"vault.region":               "claim:meta.region",
	})
	require.NoError(t, err)
	attrs := rules.Apply(Facts{Claims: map[string]any{
		"team": "payments", "groups": []any{"a", "b"}, "meta": map[string]any{"region": "eu"},
	}})
	assert.Equal(t, []Attribute{{"vault.entity.metadata.team", "payments"}, {"vault.groups", "a,b"}, {"vault.region", "eu"}}, attrs)

	for _, bad := range []map[string]string{
		{"team": "claim:team"},
		{EntityID: "claim:sub"},
		{Tenant: "claim:team"},
		{"vault.x": "header:x"},
		{"vault.x": "entity:metadata."},
	} {
		_, err := ParseRules(bad)
		assert.Error(t, err, "%v", bad)
	}
}
