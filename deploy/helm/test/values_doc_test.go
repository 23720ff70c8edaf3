package helmtest

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestEveryValueDocumented: each value in values.yaml has a row in the
// README's values table (a map documented as a whole counts for its keys),
// and each row names a value that exists.
func TestEveryValueDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z0-9_.]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = true
	}

	var undocumented []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			path := strings.TrimPrefix(prefix+"."+k, ".")
			if rows[path] {
				continue
			}
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(path, sub)
				continue
			}
			undocumented = append(undocumented, path)
		}
	}
	walk("", values)
	sort.Strings(undocumented)
	for _, p := range undocumented {
		t.Errorf("value %s (values.yaml) has no row in README.md's values table", p)
	}

	for row := range rows {
		var cur any = values
		for _, k := range strings.Split(row, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur, ok = m[k]
			if !ok {
				cur = nil
				break
			}
		}
		if cur == nil {
			if _, isNull := lookupNull(values, row); !isNull {
				t.Errorf("README.md documents %s, which values.yaml does not have", row)
			}
		}
	}
}

// lookupNull says whether path exists in values with a null value.
func lookupNull(values map[string]any, path string) (any, bool) {
	keys := strings.Split(path, ".")
	m := values
	for i, k := range keys {
		v, ok := m[k]
		if !ok {
			return nil, false
		}
		if i == len(keys)-1 {
			return v, v == nil
		}
		if m, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}
