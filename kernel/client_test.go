package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// testClient is a minimal Jupyter front end over zmq4, for protocol tests.
type testClient struct {
	t              testing.TB
	signer         *Signer
	shell, control zmq4.Socket
	hb             zmq4.Socket
	iopub          chan *Message
	session        string
	cancel         context.CancelFunc
	kernelDone     chan error
	logs           *syncBuffer
	engine         *Session
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func freePorts(t testing.TB, n int) []int {
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startKernel runs a kernel with a Go session in this process and connects to it.
func startKernel(t testing.TB) *testClient {
	p := freePorts(t, 5)
	info := &ConnectionInfo{Transport: "tcp", IP: "127.0.0.1", ShellPort: p[0], ControlPort: p[1],
		StdinPort: p[2], IOPubPort: p[3], HBPort: p[4], SignatureScheme: "hmac-sha256", Key: "test-key"}
	logs := &syncBuffer{}
	engine := NewSession()
	k, err := New(info, engine, logs)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, info, logs, k.Run, 10*time.Second)
	c.engine = engine
	return c
}

// connect runs a kernel with run and connects to it as a front end does; it returns
// once the kernel answers kernel_info and iopub delivers, which may take up to start.
func connect(t testing.TB, info *ConnectionInfo, logs *syncBuffer, run func(context.Context) error, start time.Duration) *testClient {
	p := []int{info.ShellPort, info.ControlPort, info.StdinPort, info.IOPubPort, info.HBPort}
	signer, err := NewSigner(info.SignatureScheme, []byte(info.Key))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &testClient{t: t, signer: signer, iopub: make(chan *Message, 1000), session: newID(),
		cancel: cancel, kernelDone: make(chan error, 1), logs: logs}
	go func() { c.kernelDone <- run(ctx) }()
	time.Sleep(50 * time.Millisecond) // let it bind

	c.shell = zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity("shell-"+c.session)))
	c.control = zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity("control-"+c.session)))
	c.hb = zmq4.NewReq(ctx)
	sub := zmq4.NewSub(ctx)
	for _, d := range []struct {
		s    zmq4.Socket
		port int
	}{{c.shell, p[0]}, {c.control, p[1]}, {c.hb, p[4]}, {sub, p[3]}} {
		if err := d.s.Dial(info.endpoint(d.port)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			raw, err := sub.Recv()
			if err != nil {
				return
			}
			m, err := c.signer.Decode(raw.Frames)
			if err != nil {
				t.Errorf("iopub message does not decode: %v", err)
				continue
			}
			c.iopub <- m
		}
	}()
	t.Cleanup(func() {
		cancel()
		for _, s := range []zmq4.Socket{c.shell, c.control, c.hb, sub} {
			s.Close()
		}
		if t.Failed() {
			t.Logf("kernel log:\n%s", logs.String())
		}
	})
	// Like jupyter_client: ask for kernel_info until iopub is subscribed.
	deadline := time.Now().Add(start)
	for {
		c.request(c.shell, "kernel_info_request", map[string]any{}, nil)
		c.recv(c.shell, start)
		select {
		case <-c.iopub:
			c.drain(100 * time.Millisecond)
			return c
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("iopub never delivered a message")
		}
	}
}

// request sends a signed request and returns its msg_id.
func (c *testClient) request(sock zmq4.Socket, msgType string, content, metadata map[string]any) string {
	m, err := reply(c.session, nil, msgType, content)
	if err != nil {
		c.t.Fatal(err)
	}
	m.Header.Username = "test"
	m.Metadata = metadata
	frames, err := c.signer.Encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := sock.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		c.t.Fatal(err)
	}
	return m.Header.MsgID
}

// recv waits for the next reply on a DEALER socket.
func (c *testClient) recv(sock zmq4.Socket, timeout time.Duration) *Message {
	c.t.Helper()
	ch := make(chan zmq4.Msg, 1)
	go func() {
		m, err := sock.Recv()
		if err == nil {
			ch <- m
		}
	}()
	select {
	case raw := <-ch:
		m, err := c.signer.Decode(raw.Frames)
		if err != nil {
			c.t.Fatalf("reply does not decode: %v", err)
		}
		return m
	case <-time.After(timeout):
		c.t.Fatalf("no reply within %v", timeout)
	}
	return nil
}

func (c *testClient) drain(d time.Duration) {
	for {
		select {
		case <-c.iopub:
		case <-time.After(d):
			return
		}
	}
}

// outputs collects the iopub messages of request id until its idle status.
func (c *testClient) outputs(id string, timeout time.Duration) []*Message {
	c.t.Helper()
	var out []*Message
	deadline := time.After(timeout)
	for {
		select {
		case m := <-c.iopub:
			var parent Header
			_ = json.Unmarshal(m.Parent, &parent)
			if parent.MsgID != id {
				continue
			}
			out = append(out, m)
			if m.Header.MsgType == "status" && content(c.t, m)["execution_state"] == "idle" {
				return out
			}
		case <-deadline:
			c.t.Fatalf("no idle status for %s within %v; got %d messages", id, timeout, len(out))
		}
	}
}

func content(t testing.TB, m *Message) map[string]any {
	var c map[string]any
	if err := json.Unmarshal(m.Content, &c); err != nil {
		t.Fatalf("%s content: %v", m.Header.MsgType, err)
	}
	return c
}

// execute runs code and returns the reply and the iopub messages.
func (c *testClient) execute(code string, metadata map[string]any) (map[string]any, []*Message) {
	c.t.Helper()
	id := c.request(c.shell, "execute_request", map[string]any{"code": code, "silent": false,
		"store_history": true, "user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true}, metadata)
	r := c.recv(c.shell, 30*time.Second)
	if r.Header.MsgType != "execute_reply" {
		c.t.Fatalf("got %s, want execute_reply", r.Header.MsgType)
	}
	return content(c.t, r), c.outputs(id, 10*time.Second)
}

func ofType(msgs []*Message, t string) []*Message {
	var out []*Message
	for _, m := range msgs {
		if m.Header.MsgType == t {
			out = append(out, m)
		}
	}
	return out
}

func (c *testClient) String() string { return fmt.Sprintf("client %s", c.session) }
