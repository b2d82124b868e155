package kernel

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

func TestSignEncodeDecode(t *testing.T) {
	s, err := NewSigner("hmac-sha256", []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := reply("sess", nil, "kernel_info_request", map[string]any{})
	m.Identities = [][]byte{[]byte("peer")}
	frames, err := s.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	// HMAC-SHA256 of header|parent|metadata|content, hex encoded.
	if want := s.Sign(frames[3], frames[4], frames[5], frames[6]); !bytes.Equal(frames[2], want) || len(want) != 64 {
		t.Fatalf("signature frame %q, want %q", frames[2], want)
	}
	got, err := s.Decode(frames)
	if err != nil || got.Header.MsgType != "kernel_info_request" || string(got.Identities[0]) != "peer" {
		t.Fatalf("decode: %+v, %v", got, err)
	}

	bad := append([][]byte(nil), frames...)
	bad[6] = []byte(`{"tampered": true}`)
	if _, err := s.Decode(bad); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered content: %v, want ErrBadSignature", err)
	}
	other, _ := NewSigner("hmac-sha256", []byte("other key"))
	if _, err := other.Decode(frames); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong key: %v, want ErrBadSignature", err)
	}
	for name, f := range map[string][][]byte{
		"no delimiter": {[]byte("x"), []byte("y")},
		"short":        {delimiter, frames[2], frames[3]},
		"bad header":   signed(s, []byte("not json"), []byte("{}"), []byte("{}"), []byte("{}")),
		"no msg_type":  signed(s, []byte(`{"msg_id": "1"}`), []byte("{}"), []byte("{}"), []byte("{}")),
		"bad content":  signed(s, []byte(`{"msg_type": "x"}`), []byte("{}"), []byte("{}"), []byte("{oops")),
	} {
		if _, err := s.Decode(f); err == nil || errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err %v, want a malformed-message error", name, err)
		}
	}
	// An empty key disables signing (allowed by the protocol).
	none, _ := NewSigner("", nil)
	frames, _ = none.Encode(m)
	if len(frames[2]) != 0 {
		t.Errorf("unsigned message has signature %q", frames[2])
	}
	if _, err := NewSigner("hmac-md5", []byte("k")); err == nil {
		t.Error("hmac-md5 accepted")
	}
}

func signed(s *Signer, h, p, md, c []byte) [][]byte {
	return [][]byte{delimiter, s.Sign(h, p, md, c), h, p, md, c}
}

func TestKernelOverZMQ(t *testing.T) {
	c := startKernel(t)

	// kernel_info
	c.request(c.shell, "kernel_info_request", map[string]any{}, nil)
	info := content(t, c.recv(c.shell, 5*time.Second))
	li := info["language_info"].(map[string]any)
	if info["protocol_version"] != "5.3" || info["implementation"] != "dpsflow" || li["name"] != "go" ||
		li["file_extension"] != ".go" || li["mimetype"] != "text/x-go" {
		t.Errorf("kernel_info %v", info)
	}

	// A message with a bad signature is dropped (and logged); the kernel carries on.
	m, _ := reply("x", nil, "kernel_info_request", map[string]any{})
	frames, _ := c.signer.Encode(m)
	frames[1] = []byte(strings.Repeat("0", 64))
	if err := c.shell.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		t.Fatal(err)
	}
	// So is garbage.
	if err := c.shell.Send(zmq4.NewMsgFrom([]byte("garbage"), []byte("{"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if !strings.Contains(c.logs.String(), "invalid message signature") || !strings.Contains(c.logs.String(), "malformed") {
		t.Errorf("kernel log does not report the bad messages:\n%s", c.logs.String())
	}

	// execute: state persists, output streams, the value is an execute_result.
	r, out := c.execute("x := 40\nimport \"fmt\"\nfmt.Println(\"hello, world\")", nil)
	if r["status"] != "ok" || r["execution_count"].(float64) != 1 {
		t.Errorf("execute_reply %v", r)
	}
	if s := ofType(out, "stream"); len(s) != 1 || content(t, s[0])["text"] != "hello, world\n" {
		t.Errorf("streams %v", s)
	}
	if st := ofType(out, "status"); content(t, st[0])["execution_state"] != "busy" {
		t.Errorf("first status is not busy")
	}
	if in := ofType(out, "execute_input"); len(in) != 1 {
		t.Errorf("no execute_input")
	}
	r, out = c.execute("x + 2", nil)
	res := ofType(out, "execute_result")
	if len(res) != 1 || content(t, res[0])["data"].(map[string]any)["text/plain"] != "42" {
		t.Errorf("x+2: %v %v", r, out)
	}

	// An error is an error reply plus one error message, with the cell line.
	r, out = c.execute("var s []int\n_ = s[3]", nil)
	if r["status"] != "error" || r["ename"] != "panic" || !strings.Contains(r["evalue"].(string), "line 2") {
		t.Errorf("error reply %v", r)
	}
	if e := ofType(out, "error"); len(e) != 1 {
		t.Errorf("%d error messages", len(e))
	}

	// complete, inspect, is_complete, history, comm_info
	c.request(c.shell, "complete_request", map[string]any{"code": "fmt.Printl", "cursor_pos": 10}, nil)
	cr := content(t, c.recv(c.shell, 5*time.Second))
	if ms := cr["matches"].([]any); len(ms) != 1 || ms[0] != "Println" || cr["cursor_start"].(float64) != 4 {
		t.Errorf("complete %v", cr)
	}
	c.request(c.shell, "inspect_request", map[string]any{"code": "fmt.Println", "cursor_pos": 6, "detail_level": 0}, nil)
	ir := content(t, c.recv(c.shell, 5*time.Second))
	if ir["found"] != true || !strings.Contains(ir["data"].(map[string]any)["text/plain"].(string), "func fmt.Println(") {
		t.Errorf("inspect %v", ir)
	}
	for code, want := range map[string]string{"x := 1": "complete", "func f() {": "incomplete", "x := )": "invalid"} {
		c.request(c.shell, "is_complete_request", map[string]any{"code": code}, nil)
		if got := content(t, c.recv(c.shell, 5*time.Second))["status"]; got != want {
			t.Errorf("is_complete(%q) = %v, want %s", code, got, want)
		}
	}
	c.request(c.shell, "history_request", map[string]any{"output": false, "raw": true, "hist_access_type": "tail", "n": 2}, nil)
	if h := content(t, c.recv(c.shell, 5*time.Second))["history"].([]any); len(h) != 2 || h[1].([]any)[2] != "var s []int\n_ = s[3]" {
		t.Errorf("history %v", h)
	}
	c.request(c.shell, "comm_info_request", map[string]any{}, nil)
	if ci := content(t, c.recv(c.shell, 5*time.Second)); ci["status"] != "ok" {
		t.Errorf("comm_info %v", ci)
	}

	// heartbeat
	if err := c.hb.Send(zmq4.NewMsg([]byte("ping"))); err != nil {
		t.Fatal(err)
	}
	if pong, err := c.hb.Recv(); err != nil || string(pong.Frames[0]) != "ping" {
		t.Errorf("heartbeat %v %v", pong, err)
	}
}

func TestInterruptAndRestartOverZMQ(t *testing.T) {
	c := startKernel(t)
	c.execute("y := 5", nil)

	id := c.request(c.shell, "execute_request", map[string]any{"code": "for {\n}", "silent": false}, nil)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	c.request(c.control, "interrupt_request", map[string]any{}, nil)
	if r := c.recv(c.control, 5*time.Second); r.Header.MsgType != "interrupt_reply" {
		t.Errorf("got %s", r.Header.MsgType)
	}
	r := content(t, c.recv(c.shell, 5*time.Second))
	if r["status"] != "error" || r["ename"] != "Interrupted" {
		t.Errorf("interrupted execute_reply %v", r)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("interrupt took %v", d)
	}
	c.outputs(id, 5*time.Second)

	// The interpreter survives an interrupt, and restart resets it.
	if r, out := c.execute("y", nil); r["status"] != "ok" || len(ofType(out, "execute_result")) != 1 {
		t.Errorf("after interrupt: %v", r)
	}
	// shutdown_request with restart resets the interpreter and ends Run (Jupyter starts
	// a new process).
	c.request(c.control, "shutdown_request", map[string]any{"restart": true}, nil)
	if sr := content(t, c.recv(c.control, 5*time.Second)); sr["restart"] != true || sr["status"] != "ok" {
		t.Errorf("shutdown_reply %v", sr)
	}
	select {
	case err := <-c.kernelDone:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the kernel did not stop after shutdown_request")
	}
	if _, ok := c.engine.Globals()["y"]; ok {
		t.Error("the interpreter was not reset by the restart")
	}
}

// BenchmarkRoundTrip measures a trivial cell through the real protocol:
// execute_request -> execute_reply and the idle status.
func BenchmarkRoundTrip(b *testing.B) {
	c := startKernel(b)
	for b.Loop() {
		id := c.request(c.shell, "execute_request", map[string]any{"code": "1+1", "silent": false, "store_history": true}, nil)
		r := c.recv(c.shell, 10*time.Second)
		var rc map[string]any
		_ = json.Unmarshal(r.Content, &rc)
		if rc["status"] != "ok" {
			b.Fatalf("reply %v", rc)
		}
		c.outputs(id, 10*time.Second)
	}
}
