package kernel

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/go-zeromq/zmq4"
)

// Version is the dpsflow version reported in kernel_info.
var Version = func() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}()

func goVersion() string { return strings.TrimPrefix(runtime.Version(), "go") }

type historyItem struct {
	line          int
	input, output string
}

// historySession is the session number of this kernel's history (there is only one).
const historySession = 1

func (k *Kernel) execute(sock zmq4.Socket, msg *Message) {
	var req struct {
		Code         string `json:"code"`
		Silent       bool   `json:"silent"`
		StoreHistory *bool  `json:"store_history"`
	}
	if !k.decodeContent(msg, &req) {
		k.send(sock, msg, "execute_reply", map[string]any{"status": "error", "execution_count": k.count,
			"ename": "ProtocolError", "evalue": "malformed execute_request", "traceback": []string{}})
		return
	}
	cellID, _ := msg.Metadata["cellId"].(string)
	store := !req.Silent && (req.StoreHistory == nil || *req.StoreHistory)

	k.execMu.Lock()
	defer k.execMu.Unlock()
	if store {
		k.count++
	}
	count := k.count
	if !req.Silent {
		k.publish(msg, "execute_input", map[string]any{"code": req.Code, "execution_count": count})
	}

	ctx, cancel := context.WithCancel(context.Background())
	k.mu.Lock()
	k.cancel = cancel
	k.mu.Unlock()
	res, err := k.engine.Execute(ctx, ExecRequest{Code: req.Code, CellID: cellID, Count: count}, &iopubOutput{k, msg})
	k.mu.Lock()
	k.cancel = nil
	k.mu.Unlock()
	cancel()

	item := historyItem{line: count, input: req.Code}
	if err != nil {
		var ce *CellError
		if !errors.As(err, &ce) {
			ce = &CellError{Name: "Error", Value: err.Error(), Traceback: []string{err.Error()}}
		}
		if ce.Traceback == nil {
			ce.Traceback = []string{}
		}
		k.publish(msg, "error", map[string]any{"ename": ce.Name, "evalue": ce.Value, "traceback": ce.Traceback})
		k.send(sock, msg, "execute_reply", map[string]any{"status": "error", "execution_count": count,
			"ename": ce.Name, "evalue": ce.Value, "traceback": ce.Traceback, "user_expressions": map[string]any{}})
		if store {
			k.history = append(k.history, item)
		}
		return
	}
	payload := []map[string]any{}
	if res != nil && res.Payload != nil {
		payload = res.Payload
	}
	if res != nil && res.Data != nil && !req.Silent {
		md := res.Metadata
		if md == nil {
			md = map[string]any{}
		}
		k.publish(msg, "execute_result", map[string]any{"execution_count": count, "data": res.Data, "metadata": md})
		item.output, _ = res.Data["text/plain"].(string)
	}
	if store {
		k.history = append(k.history, item)
	}
	k.send(sock, msg, "execute_reply", map[string]any{"status": "ok", "execution_count": count,
		"payload": payload, "user_expressions": map[string]any{}})
}

// iopubOutput publishes a cell's output as children of its execute_request.
type iopubOutput struct {
	k      *Kernel
	parent *Message
}

func (o *iopubOutput) Stream(name, text string) {
	o.k.publish(o.parent, "stream", map[string]any{"name": name, "text": text})
}

func (o *iopubOutput) Display(d Display) {
	if d.Clear {
		o.k.publish(o.parent, "clear_output", map[string]any{"wait": d.Wait})
		return
	}
	md := d.Metadata
	if md == nil {
		md = map[string]any{}
	}
	content := map[string]any{"data": d.Data, "metadata": md, "transient": map[string]any{}}
	if d.ID != "" {
		content["transient"] = map[string]any{"display_id": d.ID}
	}
	t := "display_data"
	if d.Update {
		t = "update_display_data"
	}
	o.k.publish(o.parent, t, content)
}

func (k *Kernel) complete(sock zmq4.Socket, msg *Message) {
	var req struct {
		Code      string `json:"code"`
		CursorPos *int   `json:"cursor_pos"`
	}
	if !k.decodeContent(msg, &req) {
		return
	}
	pos := len([]rune(req.Code))
	if req.CursorPos != nil {
		pos = *req.CursorPos
	}
	c := k.engine.Complete(req.Code, pos)
	if c.Matches == nil {
		c.Matches = []string{}
	}
	k.send(sock, msg, "complete_reply", map[string]any{"status": "ok", "matches": c.Matches,
		"cursor_start": c.CursorStart, "cursor_end": c.End, "metadata": map[string]any{}})
}

func (k *Kernel) inspect(sock zmq4.Socket, msg *Message) {
	var req struct {
		Code        string `json:"code"`
		CursorPos   *int   `json:"cursor_pos"`
		DetailLevel int    `json:"detail_level"`
	}
	if !k.decodeContent(msg, &req) {
		return
	}
	pos := len([]rune(req.Code))
	if req.CursorPos != nil {
		pos = *req.CursorPos
	}
	data, found := k.engine.Inspect(req.Code, pos, req.DetailLevel)
	if data == nil {
		data = map[string]any{}
	}
	k.send(sock, msg, "inspect_reply", map[string]any{"status": "ok", "found": found,
		"data": data, "metadata": map[string]any{}})
}

func (k *Kernel) isComplete(sock zmq4.Socket, msg *Message) {
	var req struct {
		Code string `json:"code"`
	}
	if !k.decodeContent(msg, &req) {
		return
	}
	status, indent := k.engine.IsComplete(req.Code)
	content := map[string]any{"status": status}
	if status == "incomplete" {
		content["indent"] = indent
	}
	k.send(sock, msg, "is_complete_reply", content)
}

// historyReply answers tail, range and search requests from this session's inputs.
func (k *Kernel) historyReply(sock zmq4.Socket, msg *Message) {
	var req struct {
		Output  bool   `json:"output"`
		Type    string `json:"hist_access_type"`
		Session int    `json:"session"`
		Start   int    `json:"start"`
		Stop    int    `json:"stop"`
		N       int    `json:"n"`
		Pattern string `json:"pattern"`
		Unique  bool   `json:"unique"`
	}
	if !k.decodeContent(msg, &req) {
		return
	}
	k.execMu.Lock()
	items := append([]historyItem(nil), k.history...)
	k.execMu.Unlock()

	var sel []historyItem
	switch req.Type {
	case "tail":
		sel = items
	case "range":
		if req.Session == historySession || req.Session == 0 {
			for _, it := range items {
				if it.line >= req.Start && (req.Stop == 0 || it.line < req.Stop) {
					sel = append(sel, it)
				}
			}
		}
	case "search":
		seen := map[string]bool{}
		for i := len(items) - 1; i >= 0; i-- { // newest first, so unique keeps the latest
			it := items[i]
			if !globMatch(req.Pattern, it.input) || (req.Unique && seen[it.input]) {
				continue
			}
			seen[it.input] = true
			sel = append([]historyItem{it}, sel...)
		}
	}
	if req.Type != "range" && req.N > 0 && len(sel) > req.N {
		sel = sel[len(sel)-req.N:]
	}
	out := make([]any, 0, len(sel))
	for _, it := range sel {
		if req.Output {
			var o any
			if it.output != "" {
				o = it.output
			}
			out = append(out, []any{historySession, it.line, []any{it.input, o}})
		} else {
			out = append(out, []any{historySession, it.line, it.input})
		}
	}
	k.send(sock, msg, "history_reply", map[string]any{"status": "ok", "history": out})
}

// globMatch matches s against a shell glob (* and ?), as history search patterns are.
func globMatch(pattern, s string) bool {
	var b strings.Builder
	b.WriteString("(?s)^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(s)
}
