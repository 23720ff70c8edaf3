package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/hashicorp/vault/api"
)

// Entity is what the components read of a Vault identity entity. Reads live
// here only: the extension's server side (token_lookup) and this
// collector's own identity both use them.
type Entity struct {
	Name     string
	Metadata map[string]string
	GroupIDs []string
	// GroupNames is filled only when asked for: one read per group.
	GroupNames []string
}

// ErrEntityForbidden says the token may not read the entity (a policy
// without read on identity/entity/id/<id>).
var ErrEntityForbidden = errors.New("permission denied")

// ReadEntity reads identity/entity/id/<id>, and the names of its groups
// when groupNames is set (identity/group/id/<gid>, read on each).
func ReadEntity(ctx context.Context, v Logical, id string, groupNames bool) (Entity, error) {
	p := "identity/entity/id/" + id
	sec, err := v.ReadWithContext(ctx, p)
	if err != nil {
		if isStatus(err, http.StatusForbidden) {
			return Entity{}, fmt.Errorf("read %s: %w", p, ErrEntityForbidden)
		}
		return Entity{}, fmt.Errorf("read %s: %w", p, err)
	}
	if sec == nil || sec.Data == nil {
		return Entity{}, fmt.Errorf("read %s: %w", p, &api.ResponseError{StatusCode: http.StatusNotFound})
	}
	e := Entity{Name: str(sec.Data["name"]), GroupIDs: stringList(sec.Data["group_ids"]), Metadata: map[string]string{}}
	if md, ok := sec.Data["metadata"].(map[string]any); ok {
		for k, v := range md {
			if s, ok := v.(string); ok {
				e.Metadata[k] = s
			}
		}
	}
	if !groupNames {
		return e, nil
	}
	for _, gid := range e.GroupIDs {
		gp := "identity/group/id/" + gid
		g, err := v.ReadWithContext(ctx, gp)
		if err != nil {
			if isStatus(err, http.StatusForbidden) {
				return Entity{}, fmt.Errorf("read %s: %w", gp, ErrEntityForbidden)
			}
			return Entity{}, fmt.Errorf("read %s: %w", gp, err)
		}
		if g != nil && str(g.Data["name"]) != "" {
			e.GroupNames = append(e.GroupNames, str(g.Data["name"]))
		}
	}
	slices.Sort(e.GroupNames)
	return e, nil
}
