package vaultidentityprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func (s *stamper) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	var st stamp
	n := 0
	if s.countItems { // counted only for fair_share and tenant_limits: no walk of the request otherwise
		n = td.SpanCount()
	}
	res, item, err := s.stamps(ctx, &st, n)
	if err != nil {
		return td, err
	}
	ok := true // every value exportable (depth.go)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		ok = res.applyResource(rs.Resource().Attributes()) && ok
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			ok = scrub(ss.Scope().Attributes()) && ok
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				ok = item.apply(span.Attributes()) && ok
				events := span.Events()
				for e := 0; e < events.Len(); e++ {
					ok = scrub(events.At(e).Attributes()) && ok
				}
				links := span.Links()
				for l := 0; l < links.Len(); l++ {
					ok = scrub(links.At(l).Attributes()) && ok
				}
			}
		}
	}
	if !ok {
		return td, s.unexportable(ctx)
	}
	return td, nil
}
