package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/dpsflow/dpsflow/kernel"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/spf13/cobra"
)

func newDAGExportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export NOTEBOOK.ipynb --out run.yaml",
		Short: "Turn a Go notebook into a DAG file: one go-cell node per code cell",
		Long: `export reads a notebook of the Go (dpsflow) kernel and writes its cell graph as a DAG file:
one "go-cell" node per code cell (node cN is cell N of the notebook, markdown cells counted),
with the cell's source as its parameter and an edge for every name it reads from another
cell — from the nearest cell above that defines the name, else from one below. Run the file
with 'dpsflow dag run FILE': the cells run in one interpreter session in an order that
respects those edges (cells with no edge between them may run in any order, so a cell
that only depends on another's side effects, such as a file it writes, should also read
one of its names). A notebook whose cells depend on each other in a cycle is refused.
Cell outputs (prints, and the text form of displays and values) go to standard output.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := notebookGraph(args[0])
			if err != nil {
				return usageError{err}
			}
			data, err := g.Marshal()
			if err != nil {
				return err
			}
			header := fmt.Sprintf("# Exported from %s by 'dpsflow dag export'; node cN is cell N of the notebook.\n"+
				"# Run it with 'dpsflow dag run %s'.\n", filepath.Base(args[0]), filepath.Base(out))
			if err := atomicfile.Write(out, append([]byte(header), data...), 0o644); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d code cells of %s\n", out, len(g.Nodes), args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the DAG file to write (required)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// notebookFile is what export reads of an .ipynb file (nbformat 4).
type notebookFile struct {
	NBFormat *int `json:"nbformat"`
	Metadata struct {
		Kernelspec struct {
			Language string `json:"language"`
		} `json:"kernelspec"`
		LanguageInfo struct {
			Name string `json:"name"`
		} `json:"language_info"`
	} `json:"metadata"`
	Cells []struct {
		CellType string          `json:"cell_type"`
		Source   json.RawMessage `json:"source"`
	} `json:"cells"`
}

// notebookCells reads the code cells of a Go notebook: sources[i] is cell i+1's source,
// "" for markdown and raw cells. Errors name the file and the cell.
func notebookCells(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var nb notebookFile
	if err := json.Unmarshal(data, &nb); err != nil {
		return nil, fmt.Errorf("%s: not a Jupyter notebook (nbformat 4 JSON): %w", path, err)
	}
	if nb.NBFormat == nil || *nb.NBFormat != 4 {
		v := "none"
		if nb.NBFormat != nil {
			v = fmt.Sprint(*nb.NBFormat)
		}
		return nil, fmt.Errorf("%s: nbformat %s; export reads nbformat 4 notebooks (Jupyter's format since 2015)", path, v)
	}
	for _, lang := range []string{nb.Metadata.Kernelspec.Language, nb.Metadata.LanguageInfo.Name} {
		if lang != "" && !strings.EqualFold(lang, "go") {
			return nil, fmt.Errorf("%s: a %s notebook; export takes notebooks of the Go (dpsflow) kernel", path, lang)
		}
	}
	sources := make([]string, len(nb.Cells))
	for i, c := range nb.Cells {
		if c.CellType != "code" {
			continue
		}
		var one string
		var lines []string
		switch {
		case len(c.Source) == 0 || bytes.Equal(c.Source, []byte("null")):
		case json.Unmarshal(c.Source, &one) == nil:
			sources[i] = one
		case json.Unmarshal(c.Source, &lines) == nil:
			sources[i] = strings.Join(lines, "")
		default:
			return nil, fmt.Errorf("%s: cell %d: source is neither a string nor a list of strings", path, i+1)
		}
	}
	return sources, nil
}

// notebookGraph is the cell graph of a notebook: kernel.CellGraph of its code cells, node
// cN being cell N (empty cells and markdown left out), named after the file.
func notebookGraph(path string) (*dag.Graph, error) {
	sources, err := notebookCells(path)
	if err != nil {
		return nil, err
	}
	g, err := kernel.CellGraph(sources)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var nodes []*dag.Node
	for i, n := range g.Nodes {
		if strings.TrimSpace(sources[i]) != "" {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%s: no code cells to export", path)
	}
	g.Nodes = nodes
	g.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return g, nil
}

// registryFor is the registry that runs g: the DPS kinds of pipeline.NewRegistry, plus,
// when g holds notebook cells (written by 'dag export'), the go-cell kind, whose nodes
// all run in one new kernel session with their output written to out as text.
func registryFor(g *dag.Graph, out io.Writer) (*dag.Registry, error) {
	reg, err := pipeline.NewRegistry()
	if err != nil {
		return nil, err
	}
	for _, n := range g.Nodes {
		if n.Kind == kernel.CellKind {
			if err := reg.Register(kernel.NewCellKind(g, kernel.NewSession(), textOutput{out})); err != nil {
				return nil, err
			}
			break
		}
	}
	return reg, nil
}

// textOutput writes what cells print, and the text form of what they display, to w.
type textOutput struct{ w io.Writer }

func (o textOutput) Stream(_, text string) { io.WriteString(o.w, text) }

func (o textOutput) Display(d kernel.Display) {
	text, ok := d.Data["text/plain"].(string)
	if d.Clear || !ok {
		return
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	io.WriteString(o.w, text)
}

var _ kernel.Output = textOutput{}
