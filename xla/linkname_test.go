package xla

import (
	"os"
	"reflect"
	"regexp"
	"runtime"
	"testing"

	"github.com/gomlx/gomlx/backends/simplego"
)

// linknameGoMLXVersion is the GoMLX release whose private SimpleGo functions and node
// parameter layouts the go:linkname hooks and reflection readers of this package were
// written against (fastexec.go, fastbinary.go, fasttranspose.go, convexec.go). Moving to
// another release means rereading those and then changing this line.
const linknameGoMLXVersion = "v0.26.0"

// The hooks are only checked for the GoMLX they were written for: both go.mod and the
// binary actually built must name it.
func TestLinknameHooksMatchBuiltGoMLX(t *testing.T) {
	// Test binaries carry no module list; the compiled SimpleGo's source path does name the
	// module version (…/github.com/gomlx/gomlx@vX.Y.Z/backends/simplego/…), -trimpath or not.
	file, _ := runtime.FuncForPC(reflect.ValueOf(simplego.New).Pointer()).FileLine(reflect.ValueOf(simplego.New).Pointer())
	m := regexp.MustCompile(`github\.com/gomlx/gomlx@(v[^/]+)/`).FindStringSubmatch(file)
	if m == nil || m[1] != linknameGoMLXVersion {
		t.Errorf("the binary is built with the GoMLX at %s; the go:linkname hooks were written against %s: reread them (see linknameGoMLXVersion)", file, linknameGoMLXVersion)
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	req := regexp.MustCompile(`(?m)^\s*github\.com/gomlx/gomlx (v\S+)`).FindSubmatch(mod)
	if req == nil || string(req[1]) != linknameGoMLXVersion {
		t.Errorf("go.mod requires GoMLX %q, the go:linkname hooks were written against %s", req, linknameGoMLXVersion)
	}
}
