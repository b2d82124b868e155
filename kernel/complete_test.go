package kernel

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestCompleteAndInspect(t *testing.T) {
	s := NewSession()
	mustRun(t, s, "", `import "strings"
type box struct{ Width, Height int }
func (b box) Area() int { return b.Width * b.Height }
// counter counts.
func counter(n int) int { return n + 1 }
myBox := box{2, 3}
myValue := 7`)
	c := s.Complete("x := my", 7)
	if !slices.Equal(c.Matches, []string{"myBox", "myValue"}) || c.CursorStart != 5 || c.End != 7 {
		t.Errorf("complete my: %+v", c)
	}
	if c := s.Complete("strings.HasP", 12); !slices.Equal(c.Matches, []string{"HasPrefix"}) || c.CursorStart != 8 {
		t.Errorf("complete strings.HasP: %+v", c)
	}
	if c := s.Complete("myBox.", 6); !slices.Contains(c.Matches, "Width") || !slices.Contains(c.Matches, "Height") {
		t.Errorf("complete myBox.: %+v", c)
	}
	if c := s.Complete("fo", 2); !slices.Contains(c.Matches, "for") {
		t.Errorf("keywords: %+v", c)
	}

	for code, want := range map[string]string{
		"strings.ToUpper(x)": "func strings.ToUpper(string) string",
		"counter(1)":         "func counter(n int) int",
		"myValue":            "myValue int = 7",
		"graph.Node":         "type graph.Node struct",
		"display.Table":      "func display.Table([]string, [][]string)",
	} {
		data, found := s.Inspect(code, 3, 0)
		text, _ := data["text/plain"].(string)
		if !found || !strings.Contains(text, want) {
			t.Errorf("inspect %q: %v %q, want %q", code, found, text, want)
		}
	}
	if _, found := s.Inspect("nothingHere", 3, 0); found {
		t.Error("inspect of an unknown name found something")
	}
}

func TestContextIsTheCellsContext(t *testing.T) {
	s := NewSession()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := s.Execute(ctx, ExecRequest{Code: "c := nb.Context()"}, &recorder{}); err != nil {
		t.Fatal(err)
	}
	if v, _ := mustRun(t, s, "", "c.Err()"); v != "<nil>" {
		t.Errorf("before the interrupt c.Err() = %s", v)
	}
	cancel()
	if v, _ := mustRun(t, s, "", "c.Err()"); v != "context canceled" {
		t.Errorf("after the interrupt c.Err() = %s", v)
	}
	if v, _ := mustRun(t, s, "", "nb.Context().Err()"); v != "<nil>" {
		t.Errorf("a new cell has a cancelled context: %s", v)
	}
}
