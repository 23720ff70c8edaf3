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
	e := parseEntity(sec.Data)
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

// parseEntity reads an entity's name, metadata and groups from Vault's answer.
func parseEntity(data map[string]any) Entity {
	e := Entity{Name: str(data["name"]), GroupIDs: stringList(data["group_ids"]), Metadata: map[string]string{}}
	if md, ok := data["metadata"].(map[string]any); ok {
		for k, v := range md {
			if s, ok := v.(string); ok {
				e.Metadata[k] = s
			}
		}
	}
	return e
}

// ErrNoEntity says no entity has the alias looked up.
var ErrNoEntity = errors.New("no entity has this alias")

// LookupEntityByAlias finds the entity of an alias of the auth mount with
// that accessor (identity/lookup/entity, which needs update there): its id
// and what ReadEntity reads.
func LookupEntityByAlias(ctx context.Context, v Logical, aliasName, mountAccessor string) (string, Entity, error) {
	const p = "identity/lookup/entity"
	sec, err := v.WriteWithContext(ctx, p, map[string]any{"alias_name": aliasName, "alias_mount_accessor": mountAccessor})
	if err != nil {
		if isStatus(err, http.StatusForbidden) {
			return "", Entity{}, fmt.Errorf("write %s: %w", p, ErrEntityForbidden)
		}
		return "", Entity{}, fmt.Errorf("write %s: %w", p, err)
	}
	if sec == nil || sec.Data == nil || str(sec.Data["id"]) == "" { // 204: no such alias
		return "", Entity{}, ErrNoEntity
	}
	return str(sec.Data["id"]), parseEntity(sec.Data), nil
}

// MountAccessor reads the accessor of the auth method mounted at mount
// (sys/auth/<mount>, which needs read there).
func MountAccessor(ctx context.Context, v Logical, mount string) (string, error) {
	p := "sys/auth/" + mount
	sec, err := v.ReadWithContext(ctx, p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	if sec == nil || str(sec.Data["accessor"]) == "" {
		return "", fmt.Errorf("read %s: no auth method mounted there", p)
	}
	return str(sec.Data["accessor"]), nil
}
