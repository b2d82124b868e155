//go:build !unix

package kernel

import (
	"errors"
	"os"
)

type captured struct{ log *os.File }

// captureStdio is not supported here: output of compiled code goes to the kernel's
// own stdout and stderr, which the Jupyter server shows in its log.
func captureStdio(func(name string, p []byte)) (*captured, error) {
	return nil, errors.New("capturing stdio is not supported on this system")
}

// canCapture tells whether captureStdio works here.
const canCapture = false

func capture(func(string, []byte), *os.File, *os.File) (*captured, error) {
	return captureStdio(nil)
}

func (c *captured) Sync() {}
