package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Kernel serves one Engine over the five Jupyter sockets.
type Kernel struct {
	info    *ConnectionInfo
	signer  *Signer
	engine  Engine
	session string
	log     *log.Logger

	shell, control, stdin, iopub, hb zmq4.Socket
	sendMu                           sync.Mutex // zmq4 sockets are not safe for concurrent sends

	execMu  sync.Mutex // held while a cell runs; Reset waits for it
	count   int
	history []historyItem

	pipe *pipeConn // the supervisor's pipes, for an interpreter process; nil when serving sockets

	mu     sync.Mutex
	cancel context.CancelFunc // cancels the running cell; nil when idle
	quit   chan struct{}
	once   sync.Once
}

// New returns a kernel for the connection; engine runs the cells. Logs go to logw
// (os.Stderr when nil), which Jupyter shows in the server's terminal.
func New(info *ConnectionInfo, engine Engine, logw io.Writer) (*Kernel, error) {
	signer, err := NewSigner(info.SignatureScheme, []byte(info.Key))
	if err != nil {
		return nil, err
	}
	if logw == nil {
		logw = os.Stderr
	}
	return &Kernel{
		info: info, signer: signer, engine: engine, session: newID(),
		log:  log.New(logw, "dpsflow kernel: ", log.LstdFlags),
		quit: make(chan struct{}),
	}, nil
}

// serveInProcess runs the kernel and its interpreter in this process. Over pipe (the
// interpreter process of a supervisor) it serves what the supervisor forwards;
// otherwise it binds the connection's sockets itself.
func serveInProcess(ctx context.Context, info *ConnectionInfo, pipe *pipeConn, session string) error {
	sess := NewSession()
	var logw io.Writer = os.Stderr
	var stderrLoop, logf *os.File
	if pipe != nil && pipe.stderrLoop != nil {
		stderrLoop, logf = pipe.stderrLoop, pipe.log
		logw = logf
	}
	if c, err := capture(sess.sink, stderrLoop, logf); err == nil {
		logw = c.log
		sess.log = c.log
		sess.syncOutput = c.Sync
		// A crash of the whole process must still reach the server's log (and the
		// supervisor, which reads it to tell the notebook why).
		_ = debug.SetCrashOutput(c.log, debug.CrashOptions{})
		if pipe != nil {
			sess.stderr.tee = c.log // the lines of a goroutine's panic, for the supervisor
		}
	} else {
		fmt.Fprintln(os.Stderr, "dpsflow kernel: output of compiled code stays in this log:", err)
	}
	k, err := New(info, sess, logw)
	if err != nil {
		return err
	}
	k.pipe = pipe
	if session != "" {
		k.session = session
	}
	return k.Run(ctx)
}

// Run binds the sockets and serves requests until a shutdown_request or until ctx is
// done. A shutdown_request with restart also resets the engine, so that a caller that
// runs the kernel again starts afresh. SIGINT interrupts the running cell instead of killing the
// process, for front ends configured with interrupt_mode "signal".
func (k *Kernel) Run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if k.pipe != nil {
		// The supervisor owns the sockets (and answers heartbeats); the kernel ends
		// when its pipe does.
		k.shell, k.control, k.iopub = k.pipe.socket(chShell), k.pipe.socket(chControl), k.pipe.socket(chIOPub)
		go func() {
			select {
			case <-k.pipe.done:
				k.once.Do(func() { close(k.quit) })
			case <-ctx.Done():
			}
		}()
	} else {
		closeAll, err := k.listen(ctx)
		defer closeAll()
		if err != nil {
			return err
		}
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case <-sigs:
				k.interrupt()
			case <-ctx.Done():
				return
			}
		}
	}()

	k.publish(nil, "status", map[string]any{"execution_state": "starting"})
	if k.hb != nil {
		go k.heartbeat(ctx)
	}
	go k.serve(ctx, k.control, "control")
	go k.serve(ctx, k.shell, "shell")
	select {
	case <-ctx.Done():
	case <-k.quit:
	}
	// Let the last replies (shutdown_reply) leave, then stop the loops before the
	// sockets close under them.
	time.Sleep(50 * time.Millisecond)
	stop()
	return nil
}

// listen binds the five sockets; closeAll closes them.
func (k *Kernel) listen(ctx context.Context) (closeAll func(), err error) {
	k.shell, k.control, k.stdin, k.iopub, k.hb, closeAll, err = bindSockets(ctx, k.info, k.log)
	return closeAll, err
}

// bindSockets makes and binds the five sockets of a connection file (shell, control,
// stdin, iopub, heartbeat); closeAll closes them, also after an error.
func bindSockets(ctx context.Context, info *ConnectionInfo, logger *log.Logger) (shell, control, stdin, iopub, hb zmq4.Socket, closeAll func(), err error) {
	shell = zmq4.NewRouter(ctx, zmq4.WithLogger(logger))
	control = zmq4.NewRouter(ctx, zmq4.WithLogger(logger))
	stdin = zmq4.NewRouter(ctx, zmq4.WithLogger(logger))
	iopub = zmq4.NewPub(ctx, zmq4.WithLogger(logger))
	hb = zmq4.NewRep(ctx, zmq4.WithLogger(logger))
	socks := []struct {
		s    zmq4.Socket
		port int
	}{{shell, info.ShellPort}, {control, info.ControlPort}, {stdin, info.StdinPort}, {iopub, info.IOPubPort}, {hb, info.HBPort}}
	closeAll = func() {
		for _, s := range socks {
			s.s.Close()
		}
	}
	for _, s := range socks {
		if err = s.s.Listen(info.endpoint(s.port)); err != nil {
			return
		}
	}
	return
}

// heartbeat echoes every ping so that the front end knows the process is alive.
func (k *Kernel) heartbeat(ctx context.Context) { echoHeartbeats(ctx, k.hb, k.log) }

// echoHeartbeats sends every message on the heartbeat socket back until ctx ends.
func echoHeartbeats(ctx context.Context, hb zmq4.Socket, logger *log.Logger) {
	for {
		msg, err := hb.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err := hb.Send(msg); err != nil && ctx.Err() == nil {
			logger.Printf("heartbeat: %v", err)
		}
	}
}

// serve reads requests from a ROUTER socket and handles them one at a time.
// Bad signatures and malformed messages are logged and dropped.
func (k *Kernel) serve(ctx context.Context, sock zmq4.Socket, channel string) {
	for {
		raw, err := sock.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			k.log.Printf("%s: receive: %v", channel, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		msg, err := k.signer.Decode(raw.Frames)
		if err != nil {
			k.log.Printf("%s: dropped message: %v", channel, err)
			continue
		}
		k.handle(sock, channel, msg)
	}
}

// handle dispatches one request. A panic in a handler is logged and never takes the
// kernel down.
func (k *Kernel) handle(sock zmq4.Socket, channel string, msg *Message) {
	// Only shell requests change the kernel's status: an interrupt_request answered
	// while a cell runs must not make front ends show the kernel idle.
	if channel == "shell" {
		k.publish(msg, "status", map[string]any{"execution_state": "busy"})
		defer k.publish(msg, "status", map[string]any{"execution_state": "idle"})
	}
	defer func() {
		if r := recover(); r != nil {
			k.log.Printf("%s: %s handler panicked: %v", channel, msg.Header.MsgType, r)
		}
	}()
	switch t := msg.Header.MsgType; t {
	case "kernel_info_request":
		k.send(sock, msg, "kernel_info_reply", kernelInfo())
	case "execute_request":
		k.execute(sock, msg)
	case "complete_request":
		k.complete(sock, msg)
	case "inspect_request":
		k.inspect(sock, msg)
	case "is_complete_request":
		k.isComplete(sock, msg)
	case "history_request":
		k.historyReply(sock, msg)
	case "comm_info_request":
		k.send(sock, msg, "comm_info_reply", map[string]any{"status": "ok", "comms": map[string]any{}})
	case "comm_open", "comm_msg", "comm_close":
		// No comm targets: ignore, as the protocol allows.
	case "interrupt_request":
		k.interrupt()
		k.send(sock, msg, "interrupt_reply", map[string]any{"status": "ok"})
	case "shutdown_request":
		k.shutdown(sock, msg)
	default:
		k.log.Printf("%s: unsupported message type %q ignored", channel, t)
	}
}

// send replies to msg on a ROUTER socket.
func (k *Kernel) send(sock zmq4.Socket, parent *Message, msgType string, content any) {
	m, err := reply(k.session, parent, msgType, content)
	if err != nil {
		k.log.Print(err)
		return
	}
	k.sendMsg(sock, m)
}

func (k *Kernel) sendMsg(sock zmq4.Socket, m *Message) {
	frames, err := k.signer.Encode(m)
	if err != nil {
		k.log.Printf("encoding %s: %v", m.Header.MsgType, err)
		return
	}
	k.sendMu.Lock()
	defer k.sendMu.Unlock()
	if err := sock.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		k.log.Printf("sending %s: %v", m.Header.MsgType, err)
	}
}

// publish sends a message on iopub; parent is the request it belongs to (nil for none).
func (k *Kernel) publish(parent *Message, msgType string, content any) {
	m, err := reply(k.session, parent, msgType, content)
	if err != nil {
		k.log.Print(err)
		return
	}
	m.Identities = [][]byte{[]byte(msgType)} // the PUB topic
	k.sendMsg(k.iopub, m)
}

// interrupt cancels the running cell, if any.
func (k *Kernel) interrupt() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cancel != nil {
		k.cancel()
	}
}

func (k *Kernel) shutdown(sock zmq4.Socket, msg *Message) {
	var req struct {
		Restart bool `json:"restart"`
	}
	_ = json.Unmarshal(msg.Content, &req)
	k.interrupt()
	if req.Restart {
		k.execMu.Lock()
		err := k.engine.Reset()
		k.count, k.history = 0, nil
		k.execMu.Unlock()
		if err != nil {
			k.log.Printf("restart: %v", err)
		}
	}
	k.send(sock, msg, "shutdown_reply", map[string]any{"status": "ok", "restart": req.Restart})
	// The process exits in both cases: on a restart Jupyter's kernel manager waits for
	// it to end (or kills it after a few seconds) and starts a new one.
	k.once.Do(func() { close(k.quit) })
}

// decodeContent unmarshals a request's content, reporting (not panicking on) bad JSON.
func (k *Kernel) decodeContent(msg *Message, v any) bool {
	if err := json.Unmarshal(msg.Content, v); err != nil {
		k.log.Printf("malformed %s content: %v", msg.Header.MsgType, err)
		return false
	}
	return true
}

func kernelInfo() map[string]any {
	return map[string]any{
		"status":                 "ok",
		"protocol_version":       ProtocolVersion,
		"implementation":         "dpsflow",
		"implementation_version": Version,
		"language_info": map[string]any{
			"name":               "go",
			"version":            goVersion(),
			"mimetype":           "text/x-go",
			"file_extension":     ".go",
			"pygments_lexer":     "go",
			"codemirror_mode":    "go",
			"nbconvert_exporter": "",
		},
		"banner": fmt.Sprintf("dpsflow Go kernel %s: Go cells interpreted by yaegi, "+
			"with GoMLX and dpsflow compiled in; cells form a reactive DAG.", Version),
		"help_links": []map[string]string{
			{"text": "dpsflow kernel", "url": "https://pkg.go.dev/github.com/dpsflow/dpsflow/kernel"},
		},
	}
}
