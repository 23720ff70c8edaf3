package server

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// BenchmarkAuthenticateParallel: every core authenticating a known sender
// (a cache hit) while new senders are verified and inserted every millisecond.
func BenchmarkAuthenticateParallel(b *testing.B) {
	b.Run("case=repeated/impl=ours", benchAuthenticateParallel)
}

func benchAuthenticateParallel(b *testing.B) {
	tel, err := telemetry.New(componenttest.NewNopTelemetrySettings(), component.MustNewID("vaultauth"))
	if err != nil {
		b.Fatal(err)
	}
	a := New(Settings{Header: "authorization", MaxCredentialSize: 16 << 10, CacheTTL: time.Hour, CacheSize: 10000}, tel, zap.NewNop(), new(auditevent.Bus), "vaultauth")
	// A typical Vault identity JWT is about 900 bytes.
	known := "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9." + strings.Repeat("x", 800) + ".sig"
	id := identity.New("e", "root", identity.Attribute{Key: identity.EntityName, Value: "payments"})
	a.verdicts.accept(KeyOf(known), id, time.Time{}, nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				a.verdicts.accept(KeyOf("new-sender-"+strconv.Itoa(i)), id, time.Time{}, nil)
			}
		}
	}()
	b.Cleanup(func() { close(stop); <-done })
	headers := map[string][]string{"authorization": {"Bearer " + known}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Authenticate(context.Background(), headers); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
