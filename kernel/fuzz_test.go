package kernel

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/dpsflow/dpsflow/internal/fuzzguard"
)

// frameSep splits FuzzDecode's input into frames.
var frameSep = []byte("\x00\x00")

// FuzzDecode: any frames, with or without a key, decode to a message or an error, never a
// panic; a message decoded with a key carried the right signature, and what decodes
// encodes and decodes back to the same message.
func FuzzDecode(f *testing.F) {
	s, err := NewSigner("hmac-sha256", []byte("key"))
	if err != nil {
		f.Fatal(err)
	}
	none, _ := NewSigner("", nil)
	m := &Message{
		Identities: [][]byte{[]byte("id1")},
		Header:     Header{MsgID: "1", Session: "s", Username: "u", Date: "2026-01-01T00:00:00Z", MsgType: "execute_request", Version: "5.3"},
		Parent:     json.RawMessage(`{}`),
		Metadata:   map[string]any{"a": 1.0},
		Content:    json.RawMessage(`{"code":"1+1","silent":false}`),
		Buffers:    [][]byte{[]byte("buf")},
	}
	for _, signer := range []*Signer{s, none} {
		frames, err := signer.Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Join(frames, frameSep), signer == s)
	}
	f.Add([]byte("<IDS|MSG>\x00\x00\x00\x00{\"msg_type\":\"x\"}\x00\x00{}\x00\x00{}\x00\x00{}"), false)
	f.Fuzz(func(t *testing.T, data []byte, signed bool) {
		defer fuzzguard.Hang()()
		signer := none
		if signed {
			signer = s
		}
		frames := bytes.Split(data, frameSep)
		got, err := signer.Decode(frames)
		if err != nil {
			return
		}
		if got.Header.MsgType == "" || !json.Valid(got.Content) || !json.Valid(got.Parent) {
			t.Fatalf("decoded an invalid message: %+v", got)
		}
		if signed {
			i := len(got.Identities)
			if !bytes.Equal(frames[i+1], s.Sign(frames[i+2], frames[i+3], frames[i+4], frames[i+5])) {
				t.Fatal("accepted a message with a wrong signature")
			}
		}
		again, err := signer.Encode(got)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		back, err := signer.Decode(again)
		if err != nil {
			t.Fatalf("decoding what Encode wrote: %v", err)
		}
		if back.Header != got.Header || !bytes.Equal(back.Content, got.Content) || len(back.Buffers) != len(got.Buffers) {
			t.Fatalf("round trip changed the message: %+v -> %+v", got, back)
		}
		if len(got.Metadata) > 0 && !reflect.DeepEqual(back.Metadata, got.Metadata) {
			t.Fatalf("round trip changed the metadata: %v -> %v", got.Metadata, back.Metadata)
		}
	})
}

// FuzzCellGraph: any cell sources (the code cells dag export reads from an .ipynb) give
// a graph with one node per cell in an order, or an error; never a panic.
func FuzzCellGraph(f *testing.F) {
	f.Add("x := 1\n\x00y := x + 1\n\x00fmt.Println(y)")
	f.Add("import \"fmt\"\n\x00a := b\n\x00b := a")
	f.Add("func f() int { return g() }\n\x00func g() int { return f() }\n\x00type T struct{ x int }")
	f.Fuzz(func(t *testing.T, joined string) {
		defer fuzzguard.Hang()()
		sources := bytes.Split([]byte(joined), []byte{0})
		srcs := make([]string, len(sources))
		for i, s := range sources {
			srcs[i] = string(s)
		}
		g, err := CellGraph(srcs)
		if err != nil {
			return
		}
		if len(g.Nodes) != len(srcs) {
			t.Fatalf("%d nodes for %d cells", len(g.Nodes), len(srcs))
		}
		if _, err := g.Order(); err != nil {
			t.Fatalf("CellGraph returned a graph with no order: %v", err)
		}
	})
}
