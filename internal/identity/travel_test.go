package identity

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/client"
)

func keys(md client.Metadata) []string { return slices.Sorted(md.Keys()) }

// What leaves the receiver: the credential never, the tenant always ours.
func TestVerifiedMetadata(t *testing.T) {
	tenantOnly := TenantMetadata("team-a")
	sent := client.NewMetadata(map[string][]string{"authorization": {"Bearer x"}, "user-agent": {"grpc-go"}, TenantMetadataKey: {"forged"}})

	got := VerifiedMetadata(sent, "team-a", tenantOnly, "authorization")
	assert.Equal(t, []string{"user-agent", TenantMetadataKey}, keys(got))
	assert.Equal(t, []string{"team-a"}, got.Get(TenantMetadataKey))

	got = VerifiedMetadata(sent, "", client.Metadata{}, "authorization")
	assert.Nil(t, got.Get("authorization"), "the credential stays in the metadata without tenants too")

	assert.Equal(t, []string{TenantMetadataKey}, keys(VerifiedMetadata(client.Metadata{}, "team-a", tenantOnly, "authorization")))
	assert.Empty(t, keys(VerifiedMetadata(client.Metadata{}, "", client.Metadata{}, "authorization")))
}

func TestTenantOf(t *testing.T) {
	id := New("e", "root", Attribute{Key: Tenant, Value: "team-a"})
	tenant, ok := TenantOf(client.Info{Auth: AuthData{Identity: id}, Metadata: TenantMetadata("team-b")})
	assert.True(t, ok)
	assert.Equal(t, "team-a", tenant, "while received, our own verdict")
	tenant, ok = TenantOf(client.Info{Metadata: TenantMetadata("team-b")})
	assert.True(t, ok)
	assert.Equal(t, "team-b", tenant, "after a queue, the metadata")
	_, ok = TenantOf(client.Info{Metadata: client.NewMetadata(map[string][]string{TenantMetadataKey: {"a", "b"}})})
	assert.False(t, ok, "two tenants name none")
}
