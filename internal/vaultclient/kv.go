package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// KV v2, as the components and the vaultlightstep command read it: one
// secret's data and metadata paths, and its current version.

// KVPath is a KV v2 secret's raw API paths: its data (secret/data/x) and
// its metadata (secret/metadata/x).
type KVPath struct {
	Data, Metadata string
}

// ParseKVPath splits a KV v2 data path at its first /data/ segment (the
// mount is what comes before it).
func ParseKVPath(p string) (KVPath, error) {
	p = strings.Trim(p, "/")
	mount, rest, ok := strings.Cut(p, "/data/")
	if !ok || mount == "" || strings.Trim(rest, "/") == "" {
		return KVPath{}, fmt.Errorf("%s: want a KV v2 data path, <mount>/data/<secret> (e.g. secret/data/lightstep/prod)", p)
	}
	return KVPath{Data: p, Metadata: mount + "/metadata/" + rest}, nil
}

// ErrVersionDeleted says a secret's current version is deleted or destroyed.
var ErrVersionDeleted = errors.New("the current version was deleted or destroyed")

// CurrentVersion reads the secret's metadata: its current version (0 and
// ErrNoSecret when the secret does not exist), and ErrVersionDeleted with
// it when that version is deleted or destroyed. Errors name the path.
func CurrentVersion(ctx context.Context, v Logical, p KVPath) (int, error) {
	sec, err := v.ReadWithContext(ctx, p.Metadata)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", p.Metadata, err)
	}
	if sec == nil || sec.Data == nil {
		return 0, fmt.Errorf("read %s: %w", p.Metadata, ErrNoSecret)
	}
	version := jsonInt(sec.Data["current_version"])
	if versions, ok := sec.Data["versions"].(map[string]any); ok {
		if meta, ok := versions[strconv.Itoa(version)].(map[string]any); ok {
			if deleted, _ := meta["deletion_time"].(string); deleted != "" || meta["destroyed"] == true {
				return version, fmt.Errorf("%s version %d: %w", p.Metadata, version, ErrVersionDeleted)
			}
		}
	}
	return version, nil
}

// IsNotFound says whether Vault answered 404 (or nothing at the path).
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNoSecret) || isStatus(err, http.StatusNotFound)
}
