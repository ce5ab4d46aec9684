package identsphere_test

import "syscall"

// dieWithParent makes a test server end with the test binary, even when a test panics and the cleanup
// that stops it never runs.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
