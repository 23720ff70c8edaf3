package vaultclient

import (
	"testing"

	"go.uber.org/goleak"
)

// Every watcher, session and retry loop ends with its context.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
