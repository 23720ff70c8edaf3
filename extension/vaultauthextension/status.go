package vaultauthextension

import (
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
)

// statusFolder folds the health of each Vault activity (login, secret read)
// into the component's status: RecoverableError while any fails, OK when all
// work. It reports changes of status only, not every retry.
type statusFolder struct {
	mu       sync.Mutex
	host     component.Host
	failing  map[string]error
	reported componentstatus.Status
}

func newStatusFolder(host component.Host) *statusFolder {
	return &statusFolder{host: host, failing: map[string]error{}, reported: componentstatus.StatusStarting}
}

func (s *statusFolder) report(activity string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failing[activity] = err
	} else {
		delete(s.failing, activity)
	}
	ev := componentstatus.NewEvent(componentstatus.StatusOK)
	for _, cause := range s.failing {
		ev = componentstatus.NewRecoverableErrorEvent(cause)
		break
	}
	if ev.Status() == s.reported {
		return
	}
	s.reported = ev.Status()
	componentstatus.ReportStatus(s.host, ev)
}
