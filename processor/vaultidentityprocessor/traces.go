package vaultidentityprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func (s *stamper) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	var st stamp
	res, item, err := s.stamps(ctx, &st)
	if err != nil {
		return td, err
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res.apply(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scrub(ss.Scope().Attributes())
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				item.apply(span.Attributes())
				events := span.Events()
				for e := 0; e < events.Len(); e++ {
					scrub(events.At(e).Attributes())
				}
				links := span.Links()
				for l := 0; l < links.Len(); l++ {
					scrub(links.At(l).Attributes())
				}
			}
		}
	}
	return td, nil
}
