package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// versionMetric is the gauge every vaultauth client instance exports: the
// KV v2 version of the secret it sends (0 before it has one).
const versionMetric = "otelcol_vaultauth_secret_version"

// sample is one line of the Prometheus text format.
type sample struct {
	labels map[string]string
	value  float64
}

// parseSamples reads the Prometheus text exposition format and returns the
// samples of the metric name (exactly that name: not name_suffix). Lines of
// other metrics are skipped without being parsed; a malformed line of this
// metric is an error.
func parseSamples(r io.Reader, name string) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ' && rest[0] != '\t') {
			continue // another metric, a comment, or a blank line
		}
		s, err := parseSample(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d (%s): %w", n, name, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseSample parses what follows the metric name: optional {labels}, the
// value, an optional timestamp.
func parseSample(rest string) (sample, error) {
	s := sample{labels: map[string]string{}}
	if rest[0] == '{' {
		var err error
		if rest, err = parseLabels(rest[1:], s.labels); err != nil {
			return s, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || len(fields) > 2 {
		return s, errors.New("want a value and an optional timestamp after the labels")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value %q: not a number", fields[0])
	}
	s.value = v
	return s, nil
}

// parseLabels reads `k="v",k2="v2"}` (after the opening brace) into labels
// and returns what follows the closing brace.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return "", errors.New("unterminated label set")
		}
		if s[0] == '}' {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return "", errors.New("label without a value")
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " ")
		if s == "" || s[0] != '"' {
			return "", fmt.Errorf("label %s: value not quoted", key)
		}
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default: // \\ and \"
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", fmt.Errorf("label %s: unterminated value", key)
		}
		labels[key] = b.String()
		s = strings.TrimPrefix(strings.TrimLeft(s[i+1:], " "), ",")
	}
}

// secretVersion is the version a collector's metrics say the extension
// sends, for tenant ("" for the single-secret extension: its series carries
// tenant="" or no tenant label). Several matching series (there should be
// one) give the lowest: the conservative answer.
func secretVersion(r io.Reader, extension, tenant string) (int, error) {
	samples, err := parseSamples(r, versionMetric)
	if err != nil {
		return 0, err
	}
	found := false
	lowest := math.Inf(1)
	for _, s := range samples {
		if s.labels["extension"] != extension || s.labels["tenant"] != tenant {
			continue
		}
		found = true
		lowest = math.Min(lowest, s.value)
	}
	if !found {
		return 0, fmt.Errorf("no %s series for extension %q, tenant %q", versionMetric, extension, tenant)
	}
	if math.IsNaN(lowest) || lowest < 0 || lowest > math.MaxInt32 {
		return 0, fmt.Errorf("%s is %v: not a version", versionMetric, lowest)
	}
	return int(lowest), nil
}
