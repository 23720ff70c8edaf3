package vaultclient

import (
	"context"
	"strings"

	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// resolveIdentity finds the identity of the token just logged in: entity id
// and namespace from lookup-self, the entity name from identity/entity/id
// (which needs a policy such as
// `path "identity/entity/id/{{identity.entity.id}}" { capabilities = ["read"] }`).
// Failures leave what could not be found empty: they never fail the login.
func (s *Session) resolveIdentity(ctx context.Context) {
	c := s.client
	self, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil || self == nil {
		s.logger.Info("Vault lookup-self failed; this collector's own identity is unknown until the next login", zap.Error(err))
		return
	}
	id := &identity.Identity{Namespace: NamespaceFromPath(str(self.Data["namespace_path"]))}
	id.EntityID = str(self.Data["entity_id"])
	if id.EntityID != "" {
		ent, err := c.Logical().ReadWithContext(ctx, "identity/entity/id/"+id.EntityID)
		switch {
		case err != nil:
			s.logger.Info("cannot read this collector's Vault entity name; grant read on identity/entity/id/{{identity.entity.id}} to stamp it",
				zap.Error(err))
		case ent != nil:
			id.EntityName = str(ent.Data["name"])
		}
	}
	s.self.Store(id)
}

// Identity is the identity of the current login (false before the first
// login, or for a token without an entity). No I/O.
func (s *Session) Identity() (*identity.Identity, bool) {
	id := s.self.Load()
	return id, id != nil && id.EntityID != ""
}

// NamespaceFromPath turns Vault's namespace_path ("" or "team-a/") into the
// namespace attribute value ("root" or "team-a").
func NamespaceFromPath(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return identity.RootNamespace
	}
	return p
}

func str(v any) string { s, _ := v.(string); return s }
