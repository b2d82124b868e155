package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows a DAG run: one line per node as it is reused, finished or fails, and a
// progress bar for nodes that report steps (the sampler); when w is not a terminal (CI
// logs, pipes), a line every 10 % instead of a bar.
type progress struct {
	w        io.Writer
	terminal bool
	bars     map[string]*progressbar.ProgressBar
	tenths   map[string]int
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, terminal: ok && term.IsTerminal(int(f.Fd())), bars: map[string]*progressbar.ProgressBar{}, tenths: map[string]int{}}
}

// event is the dag.Runner's Events callback (calls are serialised by the runner).
func (p *progress) event(e dag.Event) {
	switch e.Type {
	case dag.EventType("progress"):
		if !p.terminal {
			if tenth := 10 * e.Done / max(1, e.Total); tenth > p.tenths[e.Node] {
				p.tenths[e.Node] = tenth
				fmt.Fprintf(p.w, "  %-18s %d/%d  %s\n", e.Node, e.Done, e.Total, e.Message)
			}
			return
		}
		bar := p.bars[e.Node]
		if bar == nil {
			bar = progressbar.NewOptions(e.Total, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(e.Node),
				progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(250*time.Millisecond),
				progressbar.OptionSetPredictTime(true))
			p.bars[e.Node] = bar
		}
		_ = bar.Set(e.Done)
	case dag.EventType("cached"):
		fmt.Fprintf(p.w, "  %-18s %-10s reused from the cache\n", e.Node, e.Kind)
	case dag.EventType("done"):
		p.closeBar(e.Node)
		fmt.Fprintf(p.w, "  %-18s %-10s done in %s\n", e.Node, e.Kind, e.Elapsed.Round(time.Millisecond))
	case dag.EventType("failed"):
		p.closeBar(e.Node)
		fmt.Fprintf(p.w, "  %-18s %-10s FAILED: %v\n", e.Node, e.Kind, e.Err)
	case dag.EventType("warning"):
		fmt.Fprintf(p.w, "  %-18s %-10s %s\n", e.Node, e.Kind, e.Message)
	case dag.EventType("skipped"):
		fmt.Fprintf(p.w, "  %-18s %-10s skipped (an input failed)\n", e.Node, e.Kind)
	}
}

func (p *progress) closeBar(node string) {
	if bar := p.bars[node]; bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(p.w)
		delete(p.bars, node)
	}
}

func (p *progress) finish() {
	for node := range p.bars {
		p.closeBar(node)
	}
}
