// Package display shows rich output (images, SVG, HTML, Markdown, tables, progress
// bars) from notebook cells run by the dpsflow Go kernel.
//
// Every function publishes a display_data message in the running cell's output.
// Outside the kernel (a plain Go program) they print the text/plain form to stdout.
// A cell's last expression is displayed too: an image.Image as a PNG, a MIME value
// as itself, anything else as text.
package display

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/png"
	"os"
	"strings"

	"github.com/dpsflow/dpsflow/kernel/internal/hook"
)

// MIME is a bundle of representations of one output keyed by MIME type: "text/plain",
// "text/html", "text/markdown", "image/svg+xml", or base64 "image/png".
type MIME map[string]any

// Show displays a bundle.
func Show(data MIME) {
	if !hook.Publish(hook.Event{Data: data}) {
		fallback(data)
	}
}

func fallback(data MIME) {
	if s, ok := data["text/plain"].(string); ok {
		fmt.Fprintln(os.Stdout, s)
	}
}

// PNG displays PNG-encoded bytes.
func PNG(b []byte) { Show(PNGMIME(b)) }

// JPEG displays JPEG-encoded bytes.
func JPEG(b []byte) {
	Show(MIME{"image/jpeg": base64.StdEncoding.EncodeToString(b), "text/plain": fmt.Sprintf("<JPEG, %d bytes>", len(b))})
}

// Image displays an image as a PNG.
func Image(img image.Image) {
	m, err := ImageMIME(img)
	if err != nil {
		m = MIME{"text/plain": "display.Image: " + err.Error()}
	}
	Show(m)
}

// SVG displays an SVG document.
func SVG(svg string) { Show(MIME{"image/svg+xml": svg, "text/plain": "<SVG>"}) }

// HTML displays an HTML fragment.
func HTML(h string) { Show(MIME{"text/html": h, "text/plain": "<HTML>"}) }

// Markdown displays Markdown text.
func Markdown(md string) { Show(MIME{"text/markdown": md, "text/plain": md}) }

// Text displays plain text (unlike fmt.Print, as its own output item).
func Text(s string) { Show(MIME{"text/plain": s}) }

// JSON displays a value as an application/json tree.
func JSON(v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		Text("display.JSON: " + err.Error())
		return
	}
	var tree any
	_ = json.Unmarshal(b, &tree)
	Show(MIME{"application/json": tree, "text/plain": string(b)})
}

// Table displays rows under a header, as a Markdown table with an aligned text form.
func Table(header []string, rows [][]string) { Show(TableMIME(header, rows)) }

// Clear clears the cell's output.
func Clear() { hook.Publish(hook.Event{Clear: true}) }

// PNGMIME is the bundle of PNG bytes.
func PNGMIME(b []byte) MIME {
	w, h := 0, 0
	if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err == nil {
		w, h = cfg.Width, cfg.Height
	}
	return MIME{"image/png": base64.StdEncoding.EncodeToString(b), "text/plain": fmt.Sprintf("<image %dx%d>", w, h)}
}

// ImageMIME encodes an image as a PNG bundle.
func ImageMIME(img image.Image) (MIME, error) {
	if img == nil {
		return nil, fmt.Errorf("nil image")
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return PNGMIME(buf.Bytes()), nil
}

// TableMIME is the bundle of a table: Markdown, HTML and aligned plain text.
func TableMIME(header []string, rows [][]string) MIME {
	n := len(header)
	for _, r := range rows {
		n = max(n, len(r))
	}
	cell := func(r []string, i int) string {
		if i < len(r) {
			return r[i]
		}
		return ""
	}
	width := make([]int, n)
	for i := range n {
		width[i] = len(cell(header, i))
		for _, r := range rows {
			width[i] = max(width[i], len(cell(r, i)))
		}
	}
	var md, txt, h strings.Builder
	mdRow := func(r []string) {
		md.WriteString("|")
		for i := range n {
			md.WriteString(" " + strings.ReplaceAll(cell(r, i), "|", `\|`) + " |")
		}
		md.WriteString("\n")
	}
	txtRow := func(r []string) {
		for i := range n {
			if i > 0 {
				txt.WriteString("  ")
			}
			fmt.Fprintf(&txt, "%-*s", width[i], cell(r, i))
		}
		txt.WriteString("\n")
	}
	h.WriteString("<table>\n<thead><tr>")
	for i := range n {
		h.WriteString("<th>" + html.EscapeString(cell(header, i)) + "</th>")
	}
	h.WriteString("</tr></thead>\n<tbody>\n")
	mdRow(header)
	txtRow(header)
	md.WriteString("|" + strings.Repeat(" --- |", n) + "\n")
	for i := range n {
		if i > 0 {
			txt.WriteString("  ")
		}
		txt.WriteString(strings.Repeat("-", width[i]))
	}
	txt.WriteString("\n")
	for _, r := range rows {
		mdRow(r)
		txtRow(r)
		h.WriteString("<tr>")
		for i := range n {
			h.WriteString("<td>" + html.EscapeString(cell(r, i)) + "</td>")
		}
		h.WriteString("</tr>\n")
	}
	h.WriteString("</tbody>\n</table>")
	return MIME{"text/markdown": md.String(), "text/html": h.String(), "text/plain": strings.TrimRight(txt.String(), "\n")}
}
