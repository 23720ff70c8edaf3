package vaulttest

// T is the part of testing.TB the harness uses. testing.T and testing.B
// satisfy it; so does the demo's runner, which reuses the harness outside
// `go test`.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}
