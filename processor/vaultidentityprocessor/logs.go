package vaultidentityprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog"
)

func (s *stamper) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var st stamp
	n := 0
	if s.countItems { // counted only for fair_share and tenant_limits: no walk of the request otherwise
		n = ld.LogRecordCount()
	}
	res, item, err := s.stamps(ctx, &st, n)
	if err != nil {
		return ld, err
	}
	ok := true // every value exportable (depth.go)
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		ok = res.applyResource(rl.Resource().Attributes()) && ok
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			ok = scrub(sl.Scope().Attributes()) && ok
			records := sl.LogRecords()
			for k := 0; k < records.Len(); k++ {
				record := records.At(k)
				ok = item.apply(record.Attributes()) && ok
				// A map body is structured data a backend may index like
				// attributes: no identity key may hide in it either.
				ok = scrubValue(record.Body()) && ok
			}
		}
	}
	if !ok {
		return ld, s.unexportable(ctx)
	}
	return ld, nil
}
