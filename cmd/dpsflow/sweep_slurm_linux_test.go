package main

import "syscall"

// daemonAttr makes a daemon started by a test die with the test process (a timed-out test
// is killed without running its cleanups).
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
