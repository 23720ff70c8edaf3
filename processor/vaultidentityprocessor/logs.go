package vaultidentityprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog"
)

func (s *stamper) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	id, ok := s.identityOf(ctx)
	if !ok {
		if proceed, err := s.onMissing(ctx); !proceed {
			return ld, err
		}
		id = nil
	}
	resStamp, itemStamp := s.forLevel(id)
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		resStamp.apply(rl.Resource().Attributes())
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			scrub(sl.Scope().Attributes())
			records := sl.LogRecords()
			for k := 0; k < records.Len(); k++ {
				itemStamp.apply(records.At(k).Attributes())
			}
		}
	}
	return ld, nil
}
