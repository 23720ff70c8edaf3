package identity

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidTenant(t *testing.T) {
	for _, ok := range []string{"payments", "team-a", "team_1.x", "admin/team-a", "admin/team-a/sub"} {
		assert.NoError(t, ValidTenant(ok), ok)
	}
	for _, bad := range []string{"", "../prod", "a/../b", "/a", "a/", "a//b", ".hidden", "a/.b", "a b", "a:b", string(make([]byte, 64))} {
		assert.Error(t, ValidTenant(bad), bad)
	}
}
