//go:build !linux

package vaulttest

import "syscall"

// ChildProcAttr starts a test's child in its own process group. Only Linux can
// also kill it when the test binary dies.
func ChildProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
