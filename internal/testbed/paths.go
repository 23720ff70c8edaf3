package testbed

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Example returns the path of a file under examples/.
func Example(name string) string { return filepath.Join(RepoRoot(), "examples", name) }

// CollectorBinary is $COLLECTOR_BIN or bin/otelcol-vaultlightstep.
func CollectorBinary() string {
	if p := os.Getenv("COLLECTOR_BIN"); p != "" {
		return p
	}
	return filepath.Join(RepoRoot(), "bin", "otelcol-vaultlightstep")
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
