package kernel

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the interpreter process die with the supervisor, should the
// supervisor be killed without a chance to stop it.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
