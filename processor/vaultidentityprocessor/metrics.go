package vaultidentityprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func (s *stamper) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	var st stamp
	n := 0
	if s.countItems { // counted only for fair_share and tenant_limits: no walk of the request otherwise
		n = md.DataPointCount()
	}
	res, item, err := s.stamps(ctx, &st, n)
	if err != nil {
		return md, err
	}
	ok := true // every value exportable (depth.go)
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		ok = res.applyResource(rm.Resource().Attributes()) && ok
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			ok = scrub(sm.Scope().Attributes()) && ok
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				ok = scrub(m.Metadata()) && ok
				ok = stampMetric(m, item) && ok
			}
		}
	}
	if !ok {
		return md, s.unexportable(ctx)
	}
	return md, nil
}

// stampMetric stamps every data point of m and scrubs its exemplars. It
// reports whether every value was exportable.
func stampMetric(m pmetric.Metric, st *stamp) bool {
	ok := true
	point := func(attrs pcommon.Map, exemplars pmetric.ExemplarSlice) {
		ok = st.apply(attrs) && ok
		for e := 0; e < exemplars.Len(); e++ {
			ok = scrub(exemplars.At(e).FilteredAttributes()) && ok
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
			ok = st.apply(dps.At(i).Attributes()) && ok
		}
	}
	return ok
}
