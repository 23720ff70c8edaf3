package bench

import (
	"os"
	"strings"
	"time"
)

// vaulttestSleep is the polling interval while waiting for a first value.
func vaulttestSleep() { time.Sleep(10 * time.Millisecond) }

func readAll(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
