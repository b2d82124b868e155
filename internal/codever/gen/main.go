// Command gen rewrites internal/codever/versions.txt for the source tree as it is: it
// recomputes every package's hash and in-module imports and bumps the version of each
// package whose hash changed. Run it from anywhere inside the module:
//
//	go run ./internal/codever/gen          (rewrite versions.txt)
//	go run ./internal/codever/gen -check   (only report; exit status 1 if out of date)
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/dpsflow/dpsflow/internal/codever"
)

func main() {
	check := flag.Bool("check", false, "only report what changed; exit status 1 if versions.txt is out of date")
	flag.Parse()
	if err := run(*check); err != nil {
		fmt.Fprintln(os.Stderr, "codever/gen:", err)
		os.Exit(1)
	}
}

func run(check bool) error {
	root, err := codever.ModuleRoot(".")
	if err != nil {
		return err
	}
	file := filepath.Join(root, filepath.FromSlash(codever.TableFile))
	old := codever.NewTable("")
	// Read the file on disk rather than the embedded copy: they are the same when built
	// by go run, but the file is what we rewrite.
	if b, err := os.ReadFile(file); err == nil {
		if old, err = codever.Parse(b); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	now, err := codever.Scan(root)
	if err != nil {
		return err
	}
	next, changes := old.Update(now)
	for _, c := range changes {
		fmt.Println(c)
	}
	if len(changes) == 0 {
		fmt.Println(codever.TableFile, "is current")
		return nil
	}
	if check {
		return fmt.Errorf("%s is out of date: run go run ./internal/codever/gen", codever.TableFile)
	}
	if err := atomicfile.Write(file, next.Format(), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d change(s))\n", codever.TableFile, len(changes))
	return nil
}
