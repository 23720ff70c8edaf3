package vaultauthextension

import (
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
)

// statusFolder folds the health of each Vault activity (login, secret read)
// into the component's status: RecoverableError while any fails, OK when all
// work. It reports changes only: a new status, or a failure with a new cause
// (so the status always says what is wrong now), never one per retry.
type statusFolder struct {
	mu       sync.Mutex
	host     component.Host
	failing  map[string]string // activity -> error text
	reported componentstatus.Status
}

func newStatusFolder(host component.Host) *statusFolder {
	return &statusFolder{host: host, failing: map[string]string{}, reported: componentstatus.StatusStarting}
}

func (s *statusFolder) report(activity string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ev *componentstatus.Event
	switch {
	case err != nil:
		if s.failing[activity] == err.Error() && s.reported == componentstatus.StatusRecoverableError {
			return
		}
		s.failing[activity] = err.Error()
		ev = componentstatus.NewRecoverableErrorEvent(err)
	default:
		delete(s.failing, activity)
		if len(s.failing) > 0 || s.reported == componentstatus.StatusOK {
			return
		}
		ev = componentstatus.NewEvent(componentstatus.StatusOK)
	}
	s.reported = ev.Status()
	componentstatus.ReportStatus(s.host, ev)
}
