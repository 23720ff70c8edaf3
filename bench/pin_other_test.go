//go:build !linux

package bench

// pin is Linux only: elsewhere the gateway shares the cores with its load.
func pin(int, int) bool { return false }

func unpin(int) {}
