//go:build !linux

package identsphere_test

import "syscall"

// dieWithParent: only Linux can tie a child's life to its parent's; elsewhere a test that panics may leave
// its server running.
func dieWithParent() *syscall.SysProcAttr { return nil }
