package testbed

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Example returns the path of a file under examples/.
func Example(name string) string { return filepath.Join(RepoRoot(), "examples", name) }

// CollectorBinary is $COLLECTOR_BIN or bin/otelcol-vaultlightstep; a test
// without it is skipped (or fails under `make test`: vaulttest.Need).
func CollectorBinary(t T) string {
	t.Helper()
	p := os.Getenv("COLLECTOR_BIN")
	if p == "" {
		p = filepath.Join(RepoRoot(), "bin", "otelcol-vaultlightstep")
	}
	vaulttest.Need(t, p, "the collector (make collector)")
	return p
}

// Testdata returns the path of a file under testdata/.
func Testdata(name string) string { return filepath.Join(RepoRoot(), "testdata", name) }

// ReadFile returns a file's trimmed content.
func ReadFile(t T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.TrimSpace(string(b))
}
