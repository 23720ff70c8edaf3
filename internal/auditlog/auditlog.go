// Package auditlog reads the log of a Vault file audit device (one JSON
// entry per line) and finds in it the entry that issued a credential, by
// the credential's audit HMAC (vault.credential.hmac), and the write of a
// KV v2 secret version. Used by `vaultlightstep explain` and the tests.
package auditlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Auth is the auth block of an entry (the requester's) or of a response
// (a login's: the token it issued). Strings are HMACs where Vault hashes.
type Auth struct {
	ClientToken string            `json:"client_token"`
	Accessor    string            `json:"accessor"`
	DisplayName string            `json:"display_name"`
	Policies    []string          `json:"policies"`
	EntityID    string            `json:"entity_id"`
	Metadata    map[string]string `json:"metadata"`
}

// Entry is one audit log line.
type Entry struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // request or response
	Auth    *Auth     `json:"auth"`
	Request struct {
		ID            string         `json:"id"`
		Operation     string         `json:"operation"`
		Path          string         `json:"path"`
		RemoteAddress string         `json:"remote_address"`
		Data          map[string]any `json:"data"`
	} `json:"request"`
	Response *struct {
		Auth *Auth          `json:"auth"`
		Data map[string]any `json:"data"`
	} `json:"response"`
}

// maxLine bounds one entry (a response holding a large secret).
const maxLine = 16 << 20

// Scan calls f for each entry of r until f returns false. Lines that are
// not entries are skipped.
func Scan(r io.Reader, f func(Entry) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		var e Entry
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Type == "" {
			continue
		}
		if !f(e) {
			return nil
		}
	}
	return sc.Err()
}

// Issue is how an entry issued a credential.
type Issue struct {
	Entry    Entry
	Kind     string   // login (a token from an auth method or auth/token/create) or identity_token
	EntityID string   // the entity the credential belongs to
	Display  string   // display name of that token
	Policies []string // the policies of the issued token (login) or of the requester (identity token)
}

// Issued says whether e is the response that issued the credential whose
// audit HMAC is hmac: a login (or token create) whose response.auth
// client_token is hmac, or an identity token request whose
// response.data.token is hmac.
func (e Entry) Issued(hmac string) (Issue, bool) {
	if e.Type != "response" || e.Response == nil || hmac == "" {
		return Issue{}, false
	}
	// A renewal or a lookup answers with the token it was about: it did
	// not issue it.
	if a := e.Response.Auth; a != nil && a.ClientToken == hmac && !strings.HasPrefix(e.Request.Path, "auth/token/renew") &&
		!strings.HasPrefix(e.Request.Path, "auth/token/lookup") {
		return Issue{Entry: e, Kind: "login", EntityID: a.EntityID, Display: a.DisplayName, Policies: a.Policies}, true
	}
	if tok, _ := e.Response.Data["token"].(string); tok == hmac && strings.HasPrefix(e.Request.Path, "identity/oidc/token/") {
		is := Issue{Entry: e, Kind: "identity_token"}
		if e.Auth != nil {
			is.EntityID, is.Display, is.Policies = e.Auth.EntityID, e.Auth.DisplayName, e.Auth.Policies
		}
		return is, true
	}
	return Issue{}, false
}

// FindIssues returns every entry of r that issued the credential hmac
// (exactly one, for a credential Vault issued while the device was on).
func FindIssues(r io.Reader, hmac string) ([]Issue, error) {
	var out []Issue
	err := Scan(r, func(e Entry) bool {
		if is, ok := e.Issued(hmac); ok {
			out = append(out, is)
		}
		return true
	})
	return out, err
}

// FindVersionWrite returns the response entries that wrote version of the
// KV v2 secret at apiPath (<mount>/data/<path>): Vault logs the version
// number, which it does not hash.
func FindVersionWrite(r io.Reader, apiPath string, version int) ([]Entry, error) {
	var out []Entry
	err := Scan(r, func(e Entry) bool {
		if e.Type != "response" || e.Response == nil || e.Request.Path != apiPath ||
			(e.Request.Operation != "create" && e.Request.Operation != "update") {
			return true
		}
		if v, ok := e.Response.Data["version"].(float64); ok && int(v) == version {
			out = append(out, e)
		}
		return true
	})
	return out, err
}

// Describe is an entry as `explain` prints it.
func (e Entry) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "request id:     %s\n", e.Request.ID)
	fmt.Fprintf(&b, "time:           %s\n", e.Time.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "operation:      %s %s\n", e.Request.Operation, e.Request.Path)
	fmt.Fprintf(&b, "remote address: %s\n", e.Request.RemoteAddress)
	return b.String()
}
