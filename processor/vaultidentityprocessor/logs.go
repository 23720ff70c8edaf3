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
	resID, itemID := s.forLevel(id)
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		s.stamp(rl.Resource().Attributes(), resID)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			scrub(sl.Scope().Attributes())
			records := sl.LogRecords()
			for k := 0; k < records.Len(); k++ {
				s.stamp(records.At(k).Attributes(), itemID)
			}
		}
	}
	return ld, nil
}
