package vaultidentityprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog"
)

func (s *stamper) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var st stamp
	res, item, err := s.stamps(ctx, &st)
	if err != nil {
		return ld, err
	}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res.apply(rl.Resource().Attributes())
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			scrub(sl.Scope().Attributes())
			records := sl.LogRecords()
			for k := 0; k < records.Len(); k++ {
				record := records.At(k)
				item.apply(record.Attributes())
				// A map body is structured data a backend may index like
				// attributes: no identity key may hide in it either.
				scrubValue(record.Body())
			}
		}
	}
	return ld, nil
}
