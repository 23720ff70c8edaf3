package vaultidentityprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func (s *stamper) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	var st stamp
	res, item, err := s.stamps(ctx, &st)
	if err != nil {
		return md, err
	}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res.apply(rm.Resource().Attributes())
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			scrub(sm.Scope().Attributes())
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				scrub(m.Metadata())
				stampMetric(m, item)
			}
		}
	}
	return md, nil
}

// stampMetric stamps every data point of m and scrubs its exemplars.
func stampMetric(m pmetric.Metric, st *stamp) {
	point := func(attrs pcommon.Map, exemplars pmetric.ExemplarSlice) {
		st.apply(attrs)
		for e := 0; e < exemplars.Len(); e++ {
			scrub(exemplars.At(e).FilteredAttributes())
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			point(dps.At(i).Attributes(), dps.At(i).Exemplars())
		}
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			point(dps.At(i).Attributes(), dps.At(i).Exemplars())
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			point(dps.At(i).Attributes(), dps.At(i).Exemplars())
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			point(dps.At(i).Attributes(), dps.At(i).Exemplars())
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			st.apply(dps.At(i).Attributes())
		}
	}
}
