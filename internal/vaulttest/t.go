package vaulttest

import "os"

// T is the part of testing.TB the harness uses. testing.T and testing.B
// satisfy it; so does the demo's runner, which reuses the harness outside
// `go test`.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// RequireEnv, set by `make test`, makes a test whose server is not built
// fail instead of skipping: `make test` builds every server and runs every
// test; a plain `go test ./...` runs what needs none.
const RequireEnv = "VAULTLIGHTSTEP_REQUIRE_SERVERS"

// Need skips t, in one line naming `make test`, when bin (a server the test
// runs: Vault, the collector, ocb) is not built; under `make test` it fails
// it instead, so no real-server test is ever skipped there.
func Need(t T, bin, what string) {
	t.Helper()
	if _, err := os.Stat(bin); err == nil {
		return
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s not found at %s: `make test` builds it", what, bin)
	}
	t.Skipf("needs %s, not built here: `make test` builds it and runs this test", what)
}
