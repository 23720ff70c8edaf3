package vaulttest

import "syscall"

// ChildProcAttr starts a test's child (Vault, a collector) in its own process
// group, and has the kernel kill it when the test binary dies: a test that
// panics skips its cleanups, and must not leave servers behind.
func ChildProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
