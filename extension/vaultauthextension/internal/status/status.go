// Package status folds the health of an instance's Vault activities into
// its component status.
package status // import "github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/status"

import (
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Folder folds the health of each Vault activity (login, secret read)
// into the component's status: RecoverableError while any fails, OK when all
// work. It reports changes only: a new status, or a failure with a new cause
// (so the status always says what is wrong now), never one per retry.
type Folder struct {
	mu       sync.Mutex
	host     component.Host
	failing  map[string]string // activity -> error text
	reported componentstatus.Status
	lastErr  error
	// notes are attributes every event carries (the tenants parked, say):
	// what is worth knowing but takes no one else down.
	notes map[string]any
}

// NewFolder reports to host.
func NewFolder(host component.Host) *Folder {
	return &Folder{host: host, failing: map[string]string{}, reported: componentstatus.StatusStarting, notes: map[string]any{}}
}

// Annotate sets (or, with an empty map, removes) an attribute of the
// status, and reports the current status again with it.
func (s *Folder) Annotate(key string, value map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(value) == 0 {
		delete(s.notes, key)
	} else {
		m := make(map[string]any, len(value))
		for k, v := range value {
			m[k] = v
		}
		s.notes[key] = m
	}
	if s.reported == componentstatus.StatusStarting {
		return // the first report carries it
	}
	s.emitLocked(s.reported, s.lastErr)
}

func (s *Folder) emitLocked(st componentstatus.Status, err error) {
	opts := []componentstatus.EventBuilderOption{}
	if err != nil {
		opts = append(opts, componentstatus.WithError(err))
	}
	if len(s.notes) > 0 {
		attrs := pcommon.NewMap()
		_ = attrs.FromRaw(s.notes)
		opts = append(opts, componentstatus.WithAttributes(attrs))
	}
	s.reported, s.lastErr = st, err
	componentstatus.ReportStatus(s.host, componentstatus.NewEvent(st, opts...))
}

// Report folds the health of one activity in: a nil error means it works.
func (s *Folder) Report(activity string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		if s.failing[activity] == err.Error() && s.reported == componentstatus.StatusRecoverableError {
			return
		}
		s.failing[activity] = err.Error()
		s.emitLocked(componentstatus.StatusRecoverableError, err)
	default:
		delete(s.failing, activity)
		if len(s.failing) > 0 || s.reported == componentstatus.StatusOK {
			return
		}
		s.emitLocked(componentstatus.StatusOK, nil)
	}
}
