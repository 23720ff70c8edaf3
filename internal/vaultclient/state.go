package vaultclient

import (
	"sync"

	"go.uber.org/zap"
)

// Reporter receives the health of one Vault activity (login, secret, ...):
// a nil error means it works. The extension folds these into its component
// status.
type Reporter func(activity string, err error)

// stateLog logs an activity's failures and recoveries once per change of
// state, not once per retry: a warning when it starts failing, an info line
// when it recovers; a different error while already failing (an outage
// shows as EOF, then connection reset, ...) is logged at debug level only.
// Every outcome goes to the Reporter, which keeps the status current.
type stateLog struct {
	activity string
	logger   *zap.Logger
	report   Reporter

	mu      sync.Mutex
	lastErr string // "" while healthy
}

func newStateLog(activity string, logger *zap.Logger, report Reporter) *stateLog {
	if report == nil {
		report = func(string, error) {}
	}
	return &stateLog{activity: activity, logger: logger, report: report}
}

// failed records an error. Errors handed here must not carry secrets: Vault's
// API errors name the request path and status, never a token or a value.
func (s *stateLog) failed(err error) {
	s.mu.Lock()
	was := s.lastErr
	s.lastErr = err.Error()
	s.mu.Unlock()
	switch {
	case was == "":
		s.logger.Warn("Vault "+s.activity+" failing; retrying with backoff", zap.Error(err))
	case was != err.Error():
		s.logger.Debug("Vault "+s.activity+" still failing, now with another error", zap.Error(err))
	}
	s.report(s.activity, err)
}

func (s *stateLog) ok() {
	s.mu.Lock()
	was := s.lastErr
	s.lastErr = ""
	s.mu.Unlock()
	if was != "" {
		s.logger.Info("Vault " + s.activity + " recovered")
	}
	s.report(s.activity, nil)
}
