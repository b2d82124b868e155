package kernel

import "context"

// Engine runs cells and answers introspection requests. *Session is the Go engine;
// tests of the protocol may plug in others.
type Engine interface {
	Execute(ctx context.Context, req ExecRequest, out Output) (*ExecResult, error)
	Complete(code string, cursor int) Completion
	Inspect(code string, cursor, detail int) (data map[string]any, found bool)
	IsComplete(code string) (status, indent string)
	Reset() error
}

// ExecRequest is one cell to run.
type ExecRequest struct {
	Code   string
	CellID string // the front end's cell id when it sends one (metadata.cellId), else ""
	Count  int    // execution count shown on the prompt

	// NoRerun runs the cell alone, without re-running its dependents (for a caller that
	// orders the cells itself, such as a dag run of CellGraph).
	NoRerun bool
}

// ExecResult is what a successful cell produced besides its streamed output.
type ExecResult struct {
	Data     map[string]any   // execute_result MIME bundle; nil when the cell has no value
	Metadata map[string]any   // execute_result metadata
	Payload  []map[string]any // execute_reply payloads (e.g. the pager)
}

// CellError is a failed cell, as the protocol reports it.
type CellError struct {
	Name, Value string
	Traceback   []string
}

func (e *CellError) Error() string { return e.Name + ": " + e.Value }

// Display is a display_data, update_display_data or clear_output message.
type Display struct {
	Data, Metadata map[string]any
	ID             string // display_id, for displays updated in place
	Update         bool   // update_display_data of ID
	Clear          bool   // clear_output
	Wait           bool   // clear_output waits for the next output
}

// Output receives what a running cell prints and displays.
type Output interface {
	Stream(name, text string)
	Display(d Display)
}

// Completion is a complete_reply.
type Completion struct {
	Matches          []string
	CursorStart, End int
}
