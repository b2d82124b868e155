package kernel

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/traefik/yaegi/interp"
)

// exitPanic is what os.Exit and log.Fatal* panic with when a cell calls them: ending
// the kernel's process would lose every variable of the notebook, so the call ends
// the cell instead, as an error that says so.
type exitPanic struct {
	call string // os.Exit, log.Fatal, log.Fatalf or log.Fatalln
	code int
	msg  string // what log.Fatal printed
}

func (e *exitPanic) String() string {
	if e.call == "os.Exit" {
		return fmt.Sprintf("os.Exit(%d)", e.code)
	}
	return fmt.Sprintf("%s(%q)", e.call, strings.TrimSuffix(e.msg, "\n"))
}

// useExitOverrides replaces os.Exit and log.Fatal* in the interpreter (not in the
// kernel: compiled code calling them still ends the process, which the supervisor
// reports). yaegi's own replacements panic with strings, which a cell could not tell
// from any other panic. log.Fatal prints through the interpreter's default logger,
// so that log.SetPrefix and SetFlags in cells still apply.
func useExitOverrides(it *interp.Interpreter) error {
	output := func(string) {}
	if v, ok := it.Symbols("log")["log"]["Output"]; ok {
		if f, ok := v.Interface().(func(int, string) error); ok {
			output = func(s string) { _ = f(3, s) }
		}
	}
	fatal := func(call, msg string) {
		output(msg)
		panic(&exitPanic{call: call, code: 1, msg: msg})
	}
	return it.Use(interp.Exports{
		"os/os": {"Exit": reflect.ValueOf(func(code int) { panic(&exitPanic{call: "os.Exit", code: code}) })},
		"log/log": {
			"Fatal":   reflect.ValueOf(func(v ...any) { fatal("log.Fatal", fmt.Sprint(v...)) }),
			"Fatalf":  reflect.ValueOf(func(f string, v ...any) { fatal("log.Fatalf", fmt.Sprintf(f, v...)) }),
			"Fatalln": reflect.ValueOf(func(v ...any) { fatal("log.Fatalln", fmt.Sprintln(v...)) }),
		},
	})
}
