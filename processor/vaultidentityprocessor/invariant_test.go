package vaultidentityprocessor

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// The anti-spoofing invariant, checked on what the processor forwards by
// counting entries (a map built from attributes would hide duplicates):
// where the identity is stamped, each stamped key occurs exactly once with
// its verified value; nowhere a sender can write is there any other key
// equal to "vault" or starting with "vault.", in any letter case, at any
// depth. It is written independently of the processor's own key test.

// place is where an attribute map sits.
type place int

const (
	atResource place = iota // resource attributes
	atItem                  // span, log record and data point attributes
	elsewhere               // scopes, events, links, exemplars, metric metadata, log bodies
)

// reservedByTest is the invariant's definition of an identity key.
func reservedByTest(k string) bool {
	return strings.EqualFold(k, "vault") || (len(k) >= 6 && strings.EqualFold(k[:6], "vault."))
}

// checker collects violations for one batch.
type checker struct {
	want    []identity.Attribute // stamped attributes
	stampAt place                // atResource or atItem
	// stamped counts the places where want was stamped (to tell a test
	// that nothing was checked from one that passed).
	stamped    int
	violations []string
}

func (c *checker) fail(format string, args ...any) {
	if len(c.violations) < 20 {
		c.violations = append(c.violations, fmt.Sprintf(format, args...))
	}
}

// attributes checks one attribute map at a place.
func (c *checker) attributes(where string, p place, m pcommon.Map) {
	var want []identity.Attribute
	if p == c.stampAt {
		want = c.want
		c.stamped++
	}
	counts := make([]int, len(want))
	for k, v := range m.All() {
		i := -1
		for j := range want {
			if want[j].Key == k {
				i = j
			}
		}
		switch {
		case i >= 0:
			counts[i]++
			if v.Type() != pcommon.ValueTypeStr || v.Str() != want[i].Value {
				c.fail("%s: %s = %q, want the verified %q", where, k, v.AsString(), want[i].Value)
			}
		case reservedByTest(k):
			c.fail("%s: key %q survived", where, k)
		default:
			c.value(where+"."+k, v)
		}
	}
	for i, n := range counts {
		if n != 1 {
			c.fail("%s: %s occurs %d times, want exactly 1", where, want[i].Key, n)
		}
	}
}

// value checks the maps nested in v.
func (c *checker) value(where string, v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		for k, inner := range v.Map().All() {
			if reservedByTest(k) {
				c.fail("%s: nested key %q survived", where, k)
			}
			c.value(where+"."+k, inner)
		}
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			c.value(fmt.Sprintf("%s[%d]", where, i), s.At(i))
		}
	}
}

func (c *checker) traces(td ptrace.Traces) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		c.attributes(fmt.Sprintf("resource[%d]", i), atResource, rs.Resource().Attributes())
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			c.attributes(fmt.Sprintf("resource[%d].scope[%d]", i, j), elsewhere, ss.Scope().Attributes())
			for k := 0; k < ss.Spans().Len(); k++ {
				span := ss.Spans().At(k)
				where := fmt.Sprintf("resource[%d].scope[%d].span[%d]", i, j, k)
				c.attributes(where, atItem, span.Attributes())
				for e := 0; e < span.Events().Len(); e++ {
					c.attributes(fmt.Sprintf("%s.event[%d]", where, e), elsewhere, span.Events().At(e).Attributes())
				}
				for l := 0; l < span.Links().Len(); l++ {
					c.attributes(fmt.Sprintf("%s.link[%d]", where, l), elsewhere, span.Links().At(l).Attributes())
				}
			}
		}
	}
}

func (c *checker) logs(ld plog.Logs) {
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		c.attributes(fmt.Sprintf("resource[%d]", i), atResource, rl.Resource().Attributes())
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			c.attributes(fmt.Sprintf("resource[%d].scope[%d]", i, j), elsewhere, sl.Scope().Attributes())
			for k := 0; k < sl.LogRecords().Len(); k++ {
				r := sl.LogRecords().At(k)
				where := fmt.Sprintf("resource[%d].scope[%d].log[%d]", i, j, k)
				c.attributes(where, atItem, r.Attributes())
				c.value(where+".body", r.Body())
			}
		}
	}
}

func (c *checker) metrics(md pmetric.Metrics) {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		c.attributes(fmt.Sprintf("resource[%d]", i), atResource, rm.Resource().Attributes())
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			sm := rm.ScopeMetrics().At(j)
			c.attributes(fmt.Sprintf("resource[%d].scope[%d]", i, j), elsewhere, sm.Scope().Attributes())
			for k := 0; k < sm.Metrics().Len(); k++ {
				m := sm.Metrics().At(k)
				where := fmt.Sprintf("resource[%d].scope[%d].metric[%d]", i, j, k)
				c.attributes(where+".metadata", elsewhere, m.Metadata())
				c.points(where, m)
			}
		}
	}
}

func (c *checker) points(where string, m pmetric.Metric) {
	point := func(n int, attrs pcommon.Map, exemplars pmetric.ExemplarSlice) {
		c.attributes(fmt.Sprintf("%s.point[%d]", where, n), atItem, attrs)
		for e := 0; e < exemplars.Len(); e++ {
			c.attributes(fmt.Sprintf("%s.point[%d].exemplar[%d]", where, n, e), elsewhere, exemplars.At(e).FilteredAttributes())
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for i := 0; i < m.Gauge().DataPoints().Len(); i++ {
			p := m.Gauge().DataPoints().At(i)
			point(i, p.Attributes(), p.Exemplars())
		}
	case pmetric.MetricTypeSum:
		for i := 0; i < m.Sum().DataPoints().Len(); i++ {
			p := m.Sum().DataPoints().At(i)
			point(i, p.Attributes(), p.Exemplars())
		}
	case pmetric.MetricTypeHistogram:
		for i := 0; i < m.Histogram().DataPoints().Len(); i++ {
			p := m.Histogram().DataPoints().At(i)
			point(i, p.Attributes(), p.Exemplars())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for i := 0; i < m.ExponentialHistogram().DataPoints().Len(); i++ {
			p := m.ExponentialHistogram().DataPoints().At(i)
			point(i, p.Attributes(), p.Exemplars())
		}
	case pmetric.MetricTypeSummary:
		for i := 0; i < m.Summary().DataPoints().Len(); i++ {
			point(i, m.Summary().DataPoints().At(i).Attributes(), pmetric.NewExemplarSlice())
		}
	}
}

// count is how often key occurs in m, compared exactly.
func count(m pcommon.Map, key string) int {
	n := 0
	for k := range m.All() {
		if k == key {
			n++
		}
	}
	return n
}

// values lists every value of key in m, in order.
func values(m pcommon.Map, key string) []string {
	var out []string
	for k, v := range m.All() {
		if k == key {
			out = append(out, v.AsString())
		}
	}
	return out
}
