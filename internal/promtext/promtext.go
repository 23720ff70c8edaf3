// Package promtext reads a collector's internal metrics in the Prometheus
// text format (github.com/prometheus/common/expfmt): the samples of one
// metric, each with its labels. The rotation command and the test bed
// read collectors through it.
package promtext

import (
	"fmt"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one sample of a metric: its labels and its value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Samples reads the text exposition format and returns the samples of the
// metric name exactly (a counter's, a gauge's or an untyped metric's).
// A document that does not parse is an error.
func Samples(r io.Reader, name string) ([]Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	family, ok := families[name]
	if !ok {
		return nil, nil
	}
	out := make([]Sample, 0, len(family.GetMetric()))
	for _, m := range family.GetMetric() {
		s := Sample{Labels: make(map[string]string, len(m.GetLabel())), Value: value(m)}
		for _, l := range m.GetLabel() {
			s.Labels[l.GetName()] = l.GetValue()
		}
		out = append(out, s)
	}
	return out, nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// Matches says whether s has every label of want with exactly its value.
func (s Sample) Matches(want map[string]string) bool {
	for k, v := range want {
		if got, ok := s.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
