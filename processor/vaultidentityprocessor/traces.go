package vaultidentityprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func (s *stamper) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	id, ok := s.identityOf(ctx)
	if !ok {
		if proceed, err := s.onMissing(ctx); !proceed {
			return td, err
		}
		id = nil
	}
	resStamp, itemStamp := s.forLevel(id)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		resStamp.apply(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scrub(ss.Scope().Attributes())
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				itemStamp.apply(span.Attributes())
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
