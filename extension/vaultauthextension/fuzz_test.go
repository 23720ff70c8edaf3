package vaultauthextension

import (
	"testing"

	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// FuzzConfig: any YAML under the extension's key unmarshals and validates
// (or fails to) without a panic.
func FuzzConfig(f *testing.F) {
	f.Add([]byte("vault: {address: http://127.0.0.1:8200}\nauth: {token: t}\nclient: {secret: {path: secret/data/x, key: k}}"))
	f.Add([]byte("vault: {address: x}\nserver: {identity_token: {audience: a, issuers: [':']}}"))
	f.Add([]byte("server: {token_lookup: {}, identity_token: {}}\nclient: {identity_token: {role: r}, secret: {path: p}}"))
	f.Add([]byte("auth: {method: approle, role_id_file: /r, secret_id: s}\nvault: {timeout: -1s, retry: {max_interval: 0}}"))
	f.Add([]byte("client: null\nserver: {cache_size: -1, cache_ttl: 0}"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var raw map[string]any
		if yaml.Unmarshal(doc, &raw) != nil {
			return
		}
		cfg := createDefaultConfig()
		if confmap.NewFromStringMap(raw).Unmarshal(cfg) != nil {
			return
		}
		_ = confmap.Validate(cfg)
	})
}
