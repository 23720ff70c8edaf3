package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// errConflict is a refusal that wrote nothing: the secret is not at the
// version the rotation was meant for.
var errConflict = errors.New("conflict")

// casMessage is what KV v2 answers (HTTP 400) to a check-and-set write
// whose version is no longer the current one.
const casMessage = "check-and-set parameter did not match the current version"

// vaultError turns an api error into one line naming the operation and the
// path (api's own text spans lines and repeats the URL).
func vaultError(op, path string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return fmt.Errorf("%s %s: Vault answered %d: %s", op, path, re.StatusCode, msg)
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func intOf(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(n.String())
		return i, err
	case float64:
		return int(n), nil
	case int:
		return n, nil
	}
	return 0, fmt.Errorf("not a number: %T", v)
}

// writeMode is how the other keys of the current version are kept.
type writeMode int

const (
	writeMerged  writeMode = iota // read the current version, write it back with the new key
	writePatch                    // KV v2 PATCH: Vault merges; the token is never read
	writeKeyOnly                  // cannot read nor patch: only the key is written
)

// chooseMode asks Vault what this token may do on the data path: patch
// (Vault keeps the other keys), read (we keep them), or neither.
func chooseMode(ctx context.Context, c *api.Client, p vaultclient.KVPath) writeMode {
	caps, err := c.Sys().CapabilitiesSelfWithContext(ctx, p.Data)
	if err != nil {
		return writeMerged // unknown: try to read, and fall back if refused
	}
	switch {
	case slices.Contains(caps, "root") || slices.Contains(caps, "patch"):
		return writePatch
	case slices.Contains(caps, "read"):
		return writeMerged
	}
	return writeKeyOnly
}

// writeVersion writes a new version holding key=token, the provenance keys
// (nil values remove a key) and the current version's other keys, with
// check-and-set on current. It returns the new version and Vault's request
// id of the write (its audit log entry); errConflict (wrapped) when another
// write came first. note is told what could not be kept, if anything. The
// token is never part of an error.
func writeVersion(ctx context.Context, c *api.Client, p vaultclient.KVPath, key, token string, current int, prov map[string]any, note func(string)) (int, string, error) {
	v, sec, err := writeData(ctx, c, p, key, token, current, prov, note)
	if err != nil {
		return 0, "", err
	}
	return v, sec.RequestID, nil
}

// currentData reads the keys of version current, to write them back; a
// login that may not read gets none, and note says so.
func currentData(ctx context.Context, c *api.Client, p vaultclient.KVPath, key string, current int, note func(string)) (map[string]any, error) {
	old, err := c.Logical().ReadWithDataWithContext(ctx, p.Data, map[string][]string{"version": {strconv.Itoa(current)}})
	switch {
	case err != nil && statusOf(err) == http.StatusForbidden:
		note(fmt.Sprintf("cannot read %s (permission denied): writing %s only; other keys of version %d, if any, are not carried over (grant read or patch on %s to keep them)",
			p.Data, key, current, p.Data))
	case err != nil:
		return nil, vaultError("read", p.Data, err)
	case old != nil && old.Data != nil:
		if m, ok := old.Data["data"].(map[string]any); ok {
			return m, nil
		}
	}
	return map[string]any{}, nil
}

func writeData(ctx context.Context, c *api.Client, p vaultclient.KVPath, key, token string, current int, prov map[string]any, note func(string)) (int, *api.Secret, error) {
	// withProvenance adds the provenance to data written whole: a nil
	// value is left out (the key is not carried over).
	withProvenance := func(data map[string]any) map[string]any {
		for k, v := range prov {
			if v == nil {
				delete(data, k)
			} else {
				data[k] = v
			}
		}
		return data
	}
	mode := writeKeyOnly
	if current > 0 {
		mode = chooseMode(ctx, c, p)
	}
	options := map[string]any{"cas": current}
	var (
		sec *api.Secret
		err error
	)
	switch mode {
	case writePatch:
		patch := map[string]any{key: token}
		for k, v := range prov {
			patch[k] = v // JSON merge patch: null removes the key
		}
		sec, err = c.Logical().JSONMergePatch(ctx, p.Data, map[string]any{"options": options, "data": patch})
	case writeMerged:
		data, rerr := currentData(ctx, c, p, key, current, note)
		if rerr != nil {
			return 0, nil, rerr
		}
		data[key] = token
		sec, err = c.Logical().WriteWithContext(ctx, p.Data, map[string]any{"options": options, "data": withProvenance(data)})
	default:
		if current > 0 {
			note(fmt.Sprintf("this login may neither read nor patch %s: writing %s only; other keys of version %d, if any, are not carried over (grant read or patch on %s to keep them)",
				p.Data, key, current, p.Data))
		}
		sec, err = c.Logical().WriteWithContext(ctx, p.Data, map[string]any{"options": options, "data": withProvenance(map[string]any{key: token})})
	}
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest && slices.ContainsFunc(re.Errors, func(e string) bool { return strings.Contains(e, "check-and-set") }) {
			return 0, nil, fmt.Errorf("%w: %s: %s (it was %d when read): another rotation wrote first; nothing written",
				errConflict, p.Data, casMessage, current)
		}
		return 0, nil, vaultError("write", p.Data, err)
	}
	if sec == nil || sec.Data == nil {
		return 0, nil, fmt.Errorf("write %s: Vault returned no version", p.Data)
	}
	v, err := intOf(sec.Data["version"])
	if err != nil {
		return 0, nil, fmt.Errorf("write %s: version: %w", p.Data, err)
	}
	return v, sec, nil
}
