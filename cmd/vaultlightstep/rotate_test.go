package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// rotateVault is a real Vault dev server set up from examples/vault, with
// version 1 of secret/lightstep/prod holding the token and another key.
type rotateVault struct {
	*vaulttest.Server
	writer testbed.Credentials // AppRole lightstep-token-writer, the shipped policy
}

const oldToken = "ls-old-token-1f0c"

func startRotateVault(t *testing.T) *rotateVault {
	t.Helper()
	return startRotateVaultOn(t, vaulttest.Start(t))
}

// startRotateVaultOn sets v up as startRotateVault does.
func startRotateVaultOn(t *testing.T, v *vaulttest.Server) *rotateVault {
	t.Helper()
	testbed.ConfigureVault(t, v, v.Addr)
	require.Equal(t, 1, v.PutKV2(t, "lightstep/prod", map[string]any{"access_token": oldToken, "region": "eu"}))
	return &rotateVault{Server: v, writer: testbed.AppRoleCredentials(t, v, "lightstep-token-writer")}
}

// tokenWith returns a file holding a new token with only these policies.
func (v *rotateVault) tokenWith(t *testing.T, hcl string) string {
	t.Helper()
	name := "p" + strings.ReplaceAll(t.Name(), "/", "-")
	v.PutPolicy(t, name, hcl)
	sec, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{name}, TTL: "10m"})
	require.NoError(t, err)
	return writeFile(t, sec.Auth.ClientToken)
}

// versions is the secret's KV v2 history: current version, number of versions.
func (v *rotateVault) versions(t *testing.T) (current, count int) {
	t.Helper()
	md, err := v.Client.KVv2("secret").GetMetadata(context.Background(), "lightstep/prod")
	require.NoError(t, err)
	return md.CurrentVersion, len(md.Versions)
}

// liveTokens counts the server's tokens (by accessor).
func (v *rotateVault) liveTokens(t *testing.T) int {
	t.Helper()
	sec, err := v.Client.Logical().List("auth/token/accessors")
	require.NoError(t, err)
	keys, _ := sec.Data["keys"].([]any)
	return len(keys)
}

func (v *rotateVault) data(t *testing.T) map[string]any {
	t.Helper()
	sec, err := v.Client.KVv2("secret").Get(context.Background(), "lightstep/prod")
	require.NoError(t, err)
	return sec.Data
}

// liveCollector is a fake gateway whose metrics report the secret's
// current version in Vault: it switches as soon as a version is written.
func (v *rotateVault) liveCollector(t *testing.T) string {
	t.Helper()
	return fakeCollector(t, func() int { c, _ := v.versions(t); return c }).URL + "/metrics"
}

func (v *rotateVault) env() map[string]string { return map[string]string{"VAULT_ADDR": v.Addr} }

func (v *rotateVault) writerArgs() []string {
	return []string{"--approle-role-id-file", v.writer.RoleIDFile, "--approle-secret-id-file", v.writer.SecretIDFile}
}

func rotateArgs(collectors string, extra ...string) []string {
	return append([]string{"rotate", "--path", "secret/data/lightstep/prod", "--collectors", collectors,
		"--interval", "100ms", "--timeout", "20s"}, extra...)
}

// Each way of writing keeps check-and-set; those that can, keep the other keys.
func TestRotateWrites(t *testing.T) {
	v := startRotateVault(t)
	collector := v.liveCollector(t)
	ctx := context.Background()

	t.Run("the shipped writer policy: CAS write of the key alone, said on stderr", func(t *testing.T) {
		before, _ := v.versions(t)
		tokensBefore := v.liveTokens(t)
		r := testApp(v.env(), "ls-new-writer\n", nil).exec(ctx, append(rotateArgs(collector), v.writerArgs()...)...)
		require.Equal(t, exitSafe, r.code, r)
		assert.Equal(t, tokensBefore, v.liveTokens(t), "the AppRole login's token outlived the command")
		assert.Contains(t, r.stdout, "before: 1 collectors: version 1 on 1\n")
		assert.Contains(t, r.stdout, "wrote version 2 of secret/data/lightstep/prod (key access_token, check-and-set on version 1)")
		assert.True(t, strings.HasSuffix(r.stdout, "all 1 collectors send version 2: the old token can be deactivated\n"), r)
		assert.Contains(t, r.stderr, "note: this login may neither read nor patch secret/data/lightstep/prod: writing access_token only; other keys of version 1, if any, are not carried over")
		cur, n := v.versions(t)
		assert.Equal(t, before+1, cur)
		assert.Equal(t, cur, n)
		data := v.data(t)
		assert.NotEmpty(t, data["rotated_by_entity_id"], "who rotated: the writer's entity")
		delete(data, "rotated_by_entity_id")
		assert.Equal(t, map[string]any{"access_token": "ls-new-writer"}, data)
	})

	v.PutKV2(t, "lightstep/prod", map[string]any{"access_token": oldToken, "region": "eu"})

	t.Run("a login that may read: the other keys are read and written back", func(t *testing.T) {
		tokenFile := v.tokenWith(t, `
path "secret/data/lightstep/prod" { capabilities = ["read", "create", "update"] }
path "secret/metadata/lightstep/prod" { capabilities = ["read"] }`)
		r := testApp(v.env(), "ls-new-reader", nil).exec(ctx, append(rotateArgs(collector), "--vault-token-file", tokenFile)...)
		require.Equal(t, exitSafe, r.code, r)
		assert.NotContains(t, r.stderr, "note:")
		assert.Equal(t, map[string]any{"access_token": "ls-new-reader", "region": "eu"}, v.data(t))
	})

	t.Run("a login that may patch: Vault merges, the old token is never read", func(t *testing.T) {
		tokenFile := v.tokenWith(t, `
path "secret/data/lightstep/prod" { capabilities = ["patch"] }
path "secret/metadata/lightstep/prod" { capabilities = ["read"] }`)
		r := testApp(v.env(), "ls-new-patcher", nil).exec(ctx, append(rotateArgs(collector), "--vault-token-file", tokenFile)...)
		require.Equal(t, exitSafe, r.code, r)
		assert.NotContains(t, r.stderr, "note:")
		assert.Equal(t, map[string]any{"access_token": "ls-new-patcher", "region": "eu"}, v.data(t))
	})

	t.Run("VAULT_TOKEN, --token-env, another key", func(t *testing.T) {
		env := v.env()
		env["VAULT_TOKEN"], env["NEW_LS"] = v.RootToken, "ls-new-env"
		r := testApp(env, "", nil).exec(ctx, append(rotateArgs(collector), "--token-env", "NEW_LS", "--key", "backup_token")...)
		require.Equal(t, exitSafe, r.code, r)
		assert.Equal(t, map[string]any{"access_token": "ls-new-patcher", "backup_token": "ls-new-env", "region": "eu"}, v.data(t))
	})

	t.Run("a secret that does not exist yet is created with cas 0", func(t *testing.T) {
		env := v.env()
		env["VAULT_TOKEN"] = v.RootToken
		fresh := fakeCollector(t, func() int {
			md, err := v.Client.KVv2("secret").GetMetadata(context.Background(), "lightstep/staging")
			if err != nil {
				return 0
			}
			return md.CurrentVersion
		})
		r := testApp(env, "ls-staging", nil).exec(ctx, "rotate", "--path", "secret/data/lightstep/staging", "--expect-version", "0",
			"--collectors", fresh.URL, "--interval", "100ms", "--timeout", "20s")
		require.Equal(t, exitSafe, r.code, r)
		assert.Contains(t, r.stdout, "wrote version 1 of secret/data/lightstep/staging (key access_token, check-and-set on version 0)")
	})

	t.Run("a wrong --expect-version writes nothing", func(t *testing.T) {
		before, n := v.versions(t)
		r := testApp(v.env(), "ls-never", nil).exec(ctx, append(rotateArgs(collector, "--expect-version", "1"), v.writerArgs()...)...)
		require.Equal(t, exitConflict, r.code, r)
		assert.Contains(t, r.stderr, "secret/data/lightstep/prod is at version "+itoa(before)+", not 1 as expected: the secret changed since you last looked; nothing written")
		cur, n2 := v.versions(t)
		assert.Equal(t, before, cur)
		assert.Equal(t, n, n2)
	})

	t.Run("a refused login names Vault and the files, not the credentials", func(t *testing.T) {
		bad := writeFile(t, "hvs.not-a-real-token")
		r := testApp(v.env(), "ls-never", nil).exec(ctx, append(rotateArgs(collector), "--vault-token-file", bad)...)
		require.Equal(t, exitFailed, r.code, r)
		assert.Contains(t, r.stderr, "login to Vault at "+v.Addr)
		assert.Contains(t, r.stderr, "403")
		assert.NotContains(t, r.String(), "hvs.not-a-real-token")
		assert.NotContains(t, r.String(), "ls-never")
	})

	t.Run("a missing credential file is named by its flag", func(t *testing.T) {
		r := testApp(v.env(), "ls-never", nil).exec(ctx, append(rotateArgs(collector),
			"--approle-role-id-file", v.writer.RoleIDFile, "--approle-secret-id-file", "/nonexistent/secret-id")...)
		require.Equal(t, exitFailed, r.code, r)
		assert.Contains(t, r.stderr, "--approle-secret-id-file: open /nonexistent/secret-id: no such file or directory")
	})

	t.Run("a collector that does not switch: exit 4, named, after the timeout", func(t *testing.T) {
		stuck := fakeCollector(t, fixed(1)).URL + "/metrics"
		before, _ := v.versions(t)
		want := itoa(before + 1)
		r := testApp(v.env(), "ls-new-stuck", nil).exec(ctx, append(rotateArgs(collector+","+stuck, "--timeout", "1s"), v.writerArgs()...)...)
		require.Equal(t, exitNotConfirmed, r.code, r)
		cur, _ := v.versions(t)
		assert.Contains(t, r.stderr, "version "+want+" is written, but not confirmed after 1s: 1/2 collectors send version "+want+"; do NOT deactivate the old token")
		assert.Contains(t, r.stderr, "  "+stuck+" still on 1\n")
		assert.Contains(t, r.stderr, "vaultlightstep wait --version "+want+" --collectors "+collector+","+stuck)
		assert.NotContains(t, r.stdout, "can be deactivated")
		assert.Equal(t, before+1, cur)
	})
}

// Two rotations from the same --expect-version at once: Vault's
// check-and-set lets exactly one write; the other says why and writes nothing.
func TestConcurrentRotations(t *testing.T) {
	v := startRotateVault(t)
	collector := v.liveCollector(t)
	patcher := v.tokenWith(t, `
path "secret/data/lightstep/prod" { capabilities = ["patch"] }
path "secret/metadata/lightstep/prod" { capabilities = ["read"] }`)
	reader := v.tokenWith(t, `
path "secret/data/lightstep/prod" { capabilities = ["read", "create", "update"] }
path "secret/metadata/lightstep/prod" { capabilities = ["read"] }`)

	for _, tc := range []struct {
		name  string
		login []string
	}{
		{"lightstep-token-writer (AppRole)", v.writerArgs()},
		{"read and write back", []string{"--vault-token-file", reader}},
		{"patch", []string{"--vault-token-file", patcher}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, count := v.versions(t)
			// Both read the metadata before either writes.
			var bothRead sync.WaitGroup
			bothRead.Add(2)
			lineUp := func() {
				bothRead.Done()
				done := make(chan struct{})
				go func() { bothRead.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(20 * time.Second):
				}
			}
			tokens := []string{"ls-rotation-a-" + tc.name[:4], "ls-rotation-b-" + tc.name[:4]}
			results := make([]result, 2)
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a := testApp(v.env(), tokens[i], nil)
					a.beforeWrite = lineUp
					results[i] = a.exec(context.Background(), append(rotateArgs(collector, "--expect-version", itoa(start)), tc.login...)...)
				}()
			}
			wg.Wait()

			var won, lost []int
			for i, r := range results {
				switch r.code {
				case exitSafe:
					won = append(won, i)
				case exitConflict:
					lost = append(lost, i)
				default:
					t.Fatalf("rotation %d: %s", i, r)
				}
			}
			require.Len(t, won, 1, "%s\n%s", results[0], results[1])
			require.Len(t, lost, 1, "%s\n%s", results[0], results[1])
			loser := results[lost[0]]
			assert.Contains(t, loser.stderr, "secret/data/lightstep/prod: check-and-set parameter did not match the current version (it was "+itoa(start)+
				" when read): another rotation wrote first; nothing written", loser)
			assert.NotContains(t, loser.stdout, "wrote version")
			assert.Contains(t, results[won[0]].stdout, "all 1 collectors send version "+itoa(start+1)+": the old token can be deactivated\n")

			cur, n := v.versions(t)
			assert.Equal(t, start+1, cur, "one new version")
			assert.Equal(t, count+1, n, "one new version in the history")
			assert.Equal(t, tokens[won[0]], v.data(t)["access_token"], "the winner's token is current")
			for _, r := range results {
				for _, secret := range append(tokens, oldToken, v.RootToken) {
					assert.NotContains(t, r.String(), secret, "a token was printed")
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
