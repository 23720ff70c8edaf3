// Package archtest keeps docs/architecture.md true: which of the module's
// packages each package may import, and no unsafe in the product.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/vaultlightstep/vaultlightstep/"

const ext = "extension/vaultauthextension/"

// allowed is the import table of docs/architecture.md: for each package
// (a directory relative to the module root), the module packages its
// non-test files may import. harness packages may import anything.
var allowed = map[string][]string{
	"extension/vaultauthextension": {
		ext + "internal/guard", ext + "internal/metadata", ext + "internal/server",
		ext + "internal/source", ext + "internal/status", ext + "internal/telemetry",
		"internal/auditevent", "internal/identity", "internal/kube", "internal/vaultclient",
	},
	ext + "internal/server":       {ext + "internal/telemetry", "internal/auditevent", "internal/identity", "internal/kube", "internal/ratelimit", "internal/vaultclient"},
	ext + "internal/source":       {ext + "internal/status", ext + "internal/telemetry", "internal/auditevent", "internal/identity", "internal/ratelimit", "internal/vaultclient"},
	ext + "internal/guard":        {ext + "internal/telemetry", "internal/ratelimit"},
	ext + "internal/status":       {},
	ext + "internal/telemetry":    {ext + "internal/metadata"},
	ext + "internal/metadata":     {},
	ext + "internal/metadatatest": {},
	"processor/vaultidentityprocessor": {
		"internal/identity", "internal/ratelimit", "processor/vaultidentityprocessor/internal/metadata",
	},
	"processor/vaultidentityprocessor/internal/metadata":     {},
	"processor/vaultidentityprocessor/internal/metadatatest": {},
	"receiver/vaultauditreceiver":                            {"internal/auditevent", "receiver/vaultauditreceiver/internal/metadata"},
	"receiver/vaultauditreceiver/internal/metadata":          {},
	"receiver/vaultauditreceiver/internal/metadatatest":      {},
	"internal/identity":                                      {},
	"internal/kube":                                          {},
	"internal/auditevent":                                    {},
	"internal/auditlog":                                      {},
	"internal/vaultclient":                                   {"internal/auditevent", "internal/identity", "internal/ratelimit"},
	"internal/ratelimit":                                     {},
	"internal/promtext":                                      {},
	"cmd/vaultlightstep":                                     {"internal/auditlog", "internal/identity", "internal/promtext", "internal/vaultclient"},
}

// harness are the test harness packages: they may import anything, and
// nothing in allowed may import them.
var harness = []string{
	"internal/vaulttest", "internal/kubetest", "internal/pipelinetest", "internal/testbed", "internal/archtest", "internal/racedetect", "e2e", "cmd/demo",
}

// imports reads the import paths of each package's non-test Go files,
// keyed by the package's directory relative to the module root.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "tools" || name == "bin") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		dir = filepath.ToSlash(dir)
		if _, ok := pkgs[dir]; !ok {
			pkgs[dir] = nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			pkgs[dir] = append(pkgs[dir], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestPackagesImportOnlyWhatTheMapAllows(t *testing.T) {
	pkgs := imports(t)
	if len(pkgs) < len(allowed) {
		t.Fatalf("read %d packages, fewer than the map's %d: is the walk rooted at the module?", len(pkgs), len(allowed))
	}
	for dir, imps := range pkgs {
		if slices.Contains(harness, dir) {
			continue
		}
		may, ok := allowed[dir]
		if !ok {
			t.Errorf("package %s is not on the map: give it a row in docs/architecture.md and in this test's table", dir)
			continue
		}
		for _, imp := range imps {
			if imp == "unsafe" {
				t.Errorf("package %s imports unsafe: the product reads other modules only through their APIs", dir)
			}
			local, ok := strings.CutPrefix(imp, module)
			if ok && !slices.Contains(may, local) {
				t.Errorf("package %s imports %s, which docs/architecture.md does not allow it", dir, local)
			}
		}
	}
}
