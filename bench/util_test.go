package bench

import "time"

// vaulttestSleep is the polling interval while waiting for a first value.
func vaulttestSleep() { time.Sleep(10 * time.Millisecond) }
