//go:build !linux

package main

import "syscall"

// daemonAttr: only Linux can tie a child's life to its parent's.
func daemonAttr() *syscall.SysProcAttr { return nil }
