package vaulttest

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (watchers, scrapers, process waiters) ends with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
