package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/internal/fuzzguard"
)

// FuzzNotebookGraph: any bytes read as the .ipynb of 'dag export' give a graph of its
// non-empty code cells or an error naming the file; never a panic.
func FuzzNotebookGraph(f *testing.F) {
	f.Add([]byte(`{"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"language": "go"}}, "cells": [` +
		`{"cell_type": "code", "source": ["x := 1\n", "y := x + 1"]}, {"cell_type": "markdown", "source": "# t"}, ` +
		`{"cell_type": "code", "source": "fmt.Println(y)"}]}`))
	f.Add([]byte(`{"nbformat": 4, "cells": [{"cell_type": "code", "source": "a := b"}, {"cell_type": "code", "source": "b := a"}]}`))
	f.Add([]byte(`{"nbformat": 3, "cells": []}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Hang()()
		path := filepath.Join(dir, "nb.ipynb") // one file per worker: executions are sequential
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := notebookGraph(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(g.Nodes) == 0 {
			t.Fatal("a graph with no nodes")
		}
		if _, err := g.Order(); err != nil {
			t.Fatalf("exported graph has no order: %v", err)
		}
		if _, err := g.Marshal(); err != nil {
			t.Fatalf("exported graph does not marshal: %v", err)
		}
	})
}
