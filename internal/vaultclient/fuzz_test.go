package vaultclient

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// FuzzDecodeSecret feeds arbitrary response bodies through Vault's parser
// and our decoding: no panic, and a value is only ever a non-empty string
// with a sane lifetime.
func FuzzDecodeSecret(f *testing.F) {
	f.Add([]byte(`{"data":{"data":{"access_token":"v1"},"metadata":{"version":3}}}`), "access_token")
	f.Add([]byte(`{"data":{"token":"v"},"lease_id":"kv/x/1","lease_duration":60}`), "token")
	f.Add([]byte(`{"data":{"token":"eyJ","ttl":3600,"client_id":"c"}}`), "token")
	f.Add([]byte(`{"data":{"data":null,"metadata":{"version":2,"deletion_time":"2026-01-01T00:00:00Z"}}}`), "access_token")
	f.Add([]byte(`{"data":{"token":42}}`), "token")
	f.Add([]byte(`{"data":{"token":"v"},"lease_id":"x","lease_duration":9223372036854775807}`), "token")
	f.Add([]byte(`<html>`), "token")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		sec, err := api.ParseSecret(bytes.NewReader(body))
		if err != nil {
			return
		}
		now := time.Now()
		for _, cfg := range []SecretConfig{{Key: key}, {Key: key, TTLField: "ttl"}} {
			v, _, err := decodeSecret(sec, cfg, now)
			if err != nil {
				if v != (Value{}) {
					t.Fatalf("a value came with an error: %v", err)
				}
				continue
			}
			if v.Data == "" {
				t.Fatal("accepted an empty value")
			}
			if !v.Expires.IsZero() && (v.Expires.Before(now) || v.Expires.After(now.Add(maxLifetime))) {
				t.Fatalf("expiry %s out of range", v.Expires)
			}
			if strings.Contains(err2str(err), v.Data) {
				t.Fatal("the value leaked into an error")
			}
		}
	})
}

func err2str(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
