package vaulttest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"
)

// Fake is the seam to Vault (vaultclient.Vault) answering from functions,
// and counting calls by path: unit tests of caching, routing and status
// run on it without a Vault process, beside the integration tests that run
// the same behaviour against the real server.
type Fake struct {
	mu       sync.Mutex
	calls    map[string]int
	Read     func(path string) (*api.Secret, error)
	Write    func(path string, data map[string]any) (*api.Secret, error)
	loggedIn chan struct{}
}

// NewFake is a Fake that is logged in; its Read and Write answer nothing.
func NewFake() *Fake {
	f := &Fake{calls: map[string]int{}, loggedIn: make(chan struct{}),
		Read:  func(string) (*api.Secret, error) { return nil, nil },
		Write: func(string, map[string]any) (*api.Secret, error) { return nil, nil }}
	close(f.loggedIn)
	return f
}

// Count is how many calls path has had.
func (f *Fake) Count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *Fake) ReadWithContext(_ context.Context, path string) (*api.Secret, error) {
	f.mu.Lock()
	f.calls[path]++
	read := f.Read
	f.mu.Unlock()
	return read(path)
}

func (f *Fake) WriteWithContext(_ context.Context, path string, data map[string]any) (*api.Secret, error) {
	f.mu.Lock()
	f.calls[path]++
	write := f.Write
	f.mu.Unlock()
	return write(path, data)
}

func (f *Fake) LoggedIn() <-chan struct{} { return f.loggedIn }
func (f *Fake) RequestLogin()             {}

// Secret is a response as Vault's API client decodes it (numbers as json.Number).
func Secret(t T, body string) *api.Secret {
	t.Helper()
	s, err := api.ParseSecret(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse secret: %v", err)
	}
	return s
}

// KV2 is a KV v2 read response holding access_token at version.
func KV2(t T, token string, version int) *api.Secret {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"data": map[string]any{
		"data": map[string]any{"access_token": token}, "metadata": map[string]any{"version": version},
	}})
	return Secret(t, string(b))
}

// ResponseError is Vault's answer code with msg.
func ResponseError(code int, msg string) error {
	return &api.ResponseError{StatusCode: code, Errors: []string{msg}}
}
