package helmtest

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (helm and collector runs, their waiters) ends with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
