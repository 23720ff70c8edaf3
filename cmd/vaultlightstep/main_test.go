package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// result is one in-process run of the command.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// testApp is the command with env as its whole environment, stdin as its
// input, and a resolver that knows only the names in hosts.
func testApp(env map[string]string, stdin string, hosts map[string][]string) *app {
	return &app{
		stdin:  strings.NewReader(stdin),
		getenv: func(k string) string { return env[k] },
		lookup: func(_ context.Context, host string) ([]net.IPAddr, error) {
			ips, ok := hosts[host]
			if !ok {
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}
			var out []net.IPAddr
			for _, ip := range ips {
				out = append(out, net.IPAddr{IP: net.ParseIP(ip)})
			}
			return out, nil
		},
	}
}

func (a *app) exec(ctx context.Context, args ...string) result {
	var stdout, stderr bytes.Buffer
	a.stdout, a.stderr = &stdout, &stderr
	code := a.run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestParseRotate(t *testing.T) {
	env := map[string]string{"VAULT_ADDR": "http://vault:8200", "VAULT_TOKEN": "hvs.test", "NEW": "ls-new"}
	base := []string{"--path", "secret/data/lightstep/prod", "--collectors", "http://gw1:8888/metrics,gw2:8888"}

	t.Run("defaults", func(t *testing.T) {
		c, err := testApp(env, "", nil).parseRotate(base)
		require.NoError(t, err)
		assert.Equal(t, vaultclient.KVPath{Data: "secret/data/lightstep/prod", Metadata: "secret/metadata/lightstep/prod"}, c.path)
		assert.Equal(t, "access_token", c.key)
		assert.Equal(t, -1, c.expectVersion)
		assert.Equal(t, "http://vault:8200", c.vault.Address)
		assert.Equal(t, vaultclient.MethodToken, c.auth.Method)
		assert.Equal(t, "hvs.test", string(c.auth.Token))
		assert.Equal(t, []string{"http://gw1:8888/metrics", "http://gw2:8888/metrics"}, c.fleet.urls)
		assert.Equal(t, "vaultauth/lightstep", c.fleet.extension)
		assert.Empty(t, c.fleet.tenant)
		assert.Equal(t, 10*time.Minute, c.fleetFlags.timeout)
		assert.Equal(t, 2*time.Second, c.fleetFlags.interval)
	})
	t.Run("everything", func(t *testing.T) {
		c, err := testApp(map[string]string{}, "", nil).parseRotate([]string{
			"--path", "kv/team/data/lightstep/{tenant}", "--tenant", "team-a", "--key", "token",
			"--token-env", "NEW", "--expect-version", "0", "--vault-addr", "https://vault:8200",
			"--approle-role-id-file", "/r", "--secret-id-file", "/s", "--approle-mount", "ci-approle",
			"--collectors-dns", "gateway.otel.svc:8888", "--extension", "vaultauth/teams",
			"--timeout", "30s", "--interval", "500ms",
		})
		require.NoError(t, err)
		assert.Equal(t, vaultclient.KVPath{Data: "kv/team/data/lightstep/team-a", Metadata: "kv/team/metadata/lightstep/team-a"}, c.path)
		assert.Equal(t, 0, c.expectVersion)
		assert.Equal(t, "token", c.key)
		assert.Equal(t, vaultclient.MethodAppRole, c.auth.Method)
		assert.Equal(t, "ci-approle", c.auth.ResolvedMountPath())
		assert.Equal(t, "/r", c.auth.RoleIDFile)
		assert.Equal(t, "/s", c.auth.SecretIDFile)
		assert.Equal(t, []string{"gateway.otel.svc:8888"}, c.fleet.dns)
		assert.Equal(t, "team-a", c.fleet.tenant)
		assert.Equal(t, "vaultauth/teams", c.fleet.extension)
	})
	t.Run("vault token file wins over VAULT_TOKEN", func(t *testing.T) {
		c, err := testApp(env, "", nil).parseRotate(append(base, "--vault-token-file", "/t"))
		require.NoError(t, err)
		assert.Equal(t, "/t", c.auth.TokenFile)
		assert.Empty(t, string(c.auth.Token))
	})
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no path", env, []string{"--collectors", "gw:8888"}, "--path: required"},
		{"not a KV v2 data path", env, []string{"--path", "secret/lightstep/prod", "--collectors", "gw:8888"}, "want a KV v2 data path"},
		{"template without tenant", env, []string{"--path", "secret/data/lightstep/{tenant}", "--collectors", "gw:8888"}, "--tenant is required"},
		{"a tenant that climbs out of the path", env, []string{"--path", "secret/data/lightstep/{tenant}", "--tenant", "../prod", "--collectors", "gw:8888"}, "--tenant: tenant \"../prod\": only letters"},
		{"a tenant with an empty segment, waiting only", env, append(base, "--tenant", "a//b"), "--tenant: tenant \"a//b\": an empty segment"},
		{"no collectors", env, []string{"--path", "secret/data/x"}, "--collectors or --collectors-dns is required"},
		{"bad DNS name", env, append(base, "--collectors-dns", "gateway"), "want host:port"},
		{"collector URL with user info", env, []string{"--path", "secret/data/x", "--collectors", "http://u:p@gw:8888/metrics"}, "no user info"},
		{"collector URL not http", env, []string{"--path", "secret/data/x", "--collectors", "ftp://gw/metrics"}, "want an http or https URL"},
		{"two token sources", env, append(base, "--token-file", "/f", "--token-env", "NEW"), "give one"},
		{"the token as a flag", env, append(base, "--token", "ls-new"), "flag provided but not defined: -token"},
		{"the token as an argument", env, append(base, "ls-new"), "the token is never an argument"},
		{"no Vault address", map[string]string{"VAULT_TOKEN": "x"}, base, "no Vault address"},
		{"no Vault login", map[string]string{"VAULT_ADDR": "http://v"}, base, "no Vault login"},
		{"half an AppRole", env, append(base, "--approle-role-id-file", "/r"), "needs --approle-role-id-file and --approle-secret-id-file"},
		{"AppRole and token file", env, append(base, "--approle-role-id-file", "/r", "--approle-secret-id-file", "/s", "--vault-token-file", "/t"), "log in one way"},
		{"negative expect-version", env, append(base, "--expect-version", "-1"), "want a version number"},
		{"zero interval", env, append(base, "--interval", "0s"), "--interval: must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testApp(tc.env, "", nil)
			a.stderr = &bytes.Buffer{}
			_, err := a.parseRotate(tc.args)
			require.Error(t, err)
			assert.Contains(t, err.Error()+a.stderr.(*bytes.Buffer).String(), tc.want)
		})
	}
	t.Run("usage errors exit 2 and do nothing", func(t *testing.T) {
		r := testApp(env, "", nil).exec(context.Background(), "rotate", "--path", "secret/lightstep/prod", "--collectors", "gw:8888")
		assert.Equal(t, exitUsage, r.code, r)
		assert.Equal(t, exitUsage, testApp(env, "", nil).exec(context.Background(), "turn").code)
		assert.Equal(t, exitUsage, testApp(env, "", nil).exec(context.Background()).code)
	})
}

func TestNewToken(t *testing.T) {
	env := map[string]string{"NEW": "  ls-from-env\n", "EMPTY": "", "TWO": "a\nb"}
	cases := []struct {
		name, stdin string
		c           rotateConfig
		want, err   string
	}{
		{name: "file, trailing newline trimmed", c: rotateConfig{tokenFile: writeFile(t, "ls-from-file\n")}, want: "ls-from-file"},
		{name: "environment", c: rotateConfig{tokenEnv: "NEW"}, want: "ls-from-env"},
		{name: "stdin", stdin: "ls-from-stdin\n", want: "ls-from-stdin"},
		{name: "empty stdin", stdin: "\n", err: "the new token from stdin is empty"},
		{name: "empty variable", c: rotateConfig{tokenEnv: "EMPTY"}, err: "the new token from $EMPTY is empty"},
		{name: "two lines", c: rotateConfig{tokenEnv: "TWO"}, err: "holds whitespace or several lines"},
		{name: "missing file", c: rotateConfig{tokenFile: "/nonexistent/token"}, err: "/nonexistent/token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := testApp(env, tc.stdin, nil).newToken(&tc.c)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.NotContains(t, err.Error(), "\nb", "an error shows the token")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// fakeCollector serves a gateway's metrics with the version version() says.
func fakeCollector(t *testing.T, version func() int) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, "# TYPE otelcol_vaultauth_secret_version gauge\n"+
			"otelcol_vaultauth_secret_version{extension=\"vaultauth/lightstep\",otel_scope_name=\"x\",tenant=\"\"} %d\n"+
			"otelcol_vaultauth_secret_version_age_seconds{extension=\"vaultauth/lightstep\",otel_scope_name=\"x\",tenant=\"\"} 1.5\n", version())
	}))
	t.Cleanup(s.Close)
	return s
}

func fixed(v int) func() int { return func() int { return v } }

func TestWait(t *testing.T) {
	ctx := context.Background()
	on7a, on7b, on6 := fakeCollector(t, fixed(7)), fakeCollector(t, fixed(7)), fakeCollector(t, fixed(6))
	on8 := fakeCollector(t, fixed(8))
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL + "/metrics"
	gone.Close()
	short := []string{"--timeout", "1s", "--interval", "100ms"}

	t.Run("every collector on the version, or a newer one", func(t *testing.T) {
		r := testApp(nil, "", nil).exec(ctx, append([]string{"wait", "--version", "7", "--collectors",
			on7a.URL + "," + on7b.URL + "/metrics," + on8.URL}, short...)...)
		require.Equal(t, exitSafe, r.code, r)
		assert.Equal(t, "all 3 collectors send version 7: the old token can be deactivated\n", r.stdout)
	})
	t.Run("a collector lags, another cannot be scraped", func(t *testing.T) {
		r := testApp(nil, "", nil).exec(ctx, append([]string{"wait", "--version", "7", "--collectors",
			on7a.URL + "," + on6.URL + "," + goneURL}, short...)...)
		require.Equal(t, exitNotConfirmed, r.code, r)
		assert.NotContains(t, r.stdout, "can be deactivated")
		assert.Contains(t, r.stdout, "1/3 collectors send version 7: ")
		assert.Contains(t, r.stderr, "not confirmed after 1s: 1/3 collectors send version 7; do NOT deactivate the old token")
		assert.Contains(t, r.stderr, "  "+on6.URL+"/metrics still on 6\n")
		assert.Contains(t, r.stderr, "  "+goneURL+": scrape failed: ")
		assert.NotContains(t, r.stderr, on7a.URL+"/metrics still")
		// Progress is printed when it changes, not at every round.
		assert.Equal(t, 1, strings.Count(r.stdout, "\n"), r)
	})
	t.Run("a collector catches up", func(t *testing.T) {
		var v atomic.Int64
		v.Store(6)
		slow := fakeCollector(t, func() int { return int(v.Load()) })
		time.AfterFunc(300*time.Millisecond, func() { v.Store(7) })
		r := testApp(nil, "", nil).exec(ctx, "wait", "--version", "7", "--collectors", on7a.URL+","+slow.URL, "--interval", "50ms", "--timeout", "10s")
		require.Equal(t, exitSafe, r.code, r)
		assert.Equal(t, "1/2 collectors send version 7: "+slow.URL+"/metrics still on 6\n"+
			"all 2 collectors send version 7: the old token can be deactivated\n", r.stdout)
	})
	t.Run("the wrong extension is named", func(t *testing.T) {
		r := testApp(nil, "", nil).exec(ctx, "wait", "--version", "7", "--collectors", on7a.URL, "--extension", "vaultauth/other", "--timeout", "200ms")
		require.Equal(t, exitNotConfirmed, r.code, r)
		assert.Contains(t, r.stderr, on7a.URL+`/metrics: no otelcol_vaultauth_secret_version series for extension "vaultauth/other", tenant ""`)
	})
	t.Run("DNS: every A/AAAA record is a collector", func(t *testing.T) {
		_, port7, _ := net.SplitHostPort(strings.TrimPrefix(on7a.URL, "http://"))
		_, port6, _ := net.SplitHostPort(strings.TrimPrefix(on6.URL, "http://"))
		hosts := map[string][]string{"gateways.test": {"127.0.0.1", "127.0.0.2"}}
		r := testApp(nil, "", hosts).exec(ctx, "wait", "--version", "7", "--collectors-dns", "gateways.test:"+port7, "--timeout", "300ms")
		require.Equal(t, exitNotConfirmed, r.code, "127.0.0.2 serves nothing: %s", r)
		assert.Contains(t, r.stderr, "http://127.0.0.2:"+port7+"/metrics: scrape failed")
		hosts["gateways.test"] = []string{"127.0.0.1"}
		r = testApp(nil, "", hosts).exec(ctx, "wait", "--version", "7", "--collectors-dns", "gateways.test:"+port7+",gateways.test:"+port6, "--timeout", "300ms", "--interval", "50ms")
		require.Equal(t, exitNotConfirmed, r.code, r)
		assert.Contains(t, r.stderr, "http://127.0.0.1:"+port6+"/metrics still on 6")
		r = testApp(nil, "", hosts).exec(ctx, "wait", "--version", "7", "--collectors-dns", "gateways.test:"+port7)
		require.Equal(t, exitSafe, r.code, r)
		assert.Equal(t, "all 1 collectors send version 7: the old token can be deactivated\n", r.stdout)
		r = testApp(nil, "", hosts).exec(ctx, "wait", "--version", "7", "--collectors-dns", "nowhere.test:8888", "--timeout", "200ms")
		require.Equal(t, exitNotConfirmed, r.code, r)
		assert.Contains(t, r.stderr, "dns:nowhere.test:8888: resolve nowhere.test: no such host")
	})
	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		r := testApp(nil, "", nil).exec(ctx, "wait", "--version", "7", "--collectors", on6.URL, "--interval", "50ms")
		require.Equal(t, exitNotConfirmed, r.code, r)
		assert.Contains(t, r.stderr, "interrupted: 0/1 collectors send version 7")
	})
	t.Run("usage", func(t *testing.T) {
		r := testApp(nil, "", nil).exec(ctx, "wait", "--collectors", on7a.URL)
		assert.Equal(t, exitUsage, r.code, r)
		assert.Contains(t, r.stderr, "--version: required")
	})
}

func TestUnwrapDNS(t *testing.T) {
	assert.EqualError(t, unwrapDNS(&net.DNSError{Err: "server misbehaving", Name: "x"}), "server misbehaving")
	other := errors.New("other")
	assert.Equal(t, other, unwrapDNS(other))
}
