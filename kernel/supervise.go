package kernel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Options configure Serve.
type Options struct {
	// MaxMemory bounds the resident memory of the interpreter process, in bytes: a cell
	// that goes past it is stopped by restarting the interpreter, and its reply says so.
	// 0: no bound.
	MaxMemory int64
}

// The supervisor starts the interpreter process as this same executable, with the same
// arguments, and these variables set.
const (
	childEnv        = "DPSFLOW_KERNEL_CHILD" // the connection file
	childSessionEnv = "DPSFLOW_KERNEL_SESSION"
	childMemEnv     = "DPSFLOW_KERNEL_MAX_MEMORY"
)

// cellEndMarker is a line the interpreter process writes to its stderr when a cell
// ends: what it wrote before cannot explain a crash after.
const cellEndMarker = "\x00dpsflow-cell-end"

// frameMarker starts the lines in which the interpreter process passes on the frames
// yaegi writes while a panic unwinds: the supervisor keeps them to name the cell line
// of a goroutine's panic, and leaves them out of the server's log.
const frameMarker = "\x00dpsflow-frame "

// Serve runs a Go kernel for the connection file until Jupyter shuts it down: a
// supervisor that owns the sockets and runs the cells in an interpreter process,
// which it restarts when it dies (see the package documentation).
func Serve(ctx context.Context, connectionFile string, opts Options) error {
	if os.Getenv(childEnv) != "" {
		return serveChild(ctx)
	}
	info, err := LoadConnection(connectionFile)
	if err != nil {
		return err
	}
	s, err := newSupervisor(info, connectionFile, opts, os.Stderr)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// serveChild is the interpreter process: it serves what the supervisor forwards on
// file descriptor 3 and answers on 4.
func serveChild(ctx context.Context) error {
	file, session := os.Getenv(childEnv), os.Getenv(childSessionEnv)
	maxMem, _ := strconv.ParseInt(os.Getenv(childMemEnv), 10, 64)
	for _, k := range []string{childEnv, childSessionEnv, childMemEnv} {
		os.Unsetenv(k) // programs that cells start are not kernels
	}
	info, err := LoadConnection(file)
	if err != nil {
		return err
	}
	if maxMem > 0 {
		// Collect garbage harder near the bound, so that only live data reaches it.
		debug.SetMemoryLimit(maxMem)
	}
	r, w := os.NewFile(3, "from-supervisor"), os.NewFile(4, "to-supervisor")
	if r == nil || w == nil {
		return errors.New("dpsflow kernel: the interpreter process needs its supervisor's pipes on fds 3 and 4")
	}
	pipe := newPipeConn(r, w)
	if canCapture {
		pipe.log, pipe.stderrLoop = os.NewFile(5, "log"), os.NewFile(6, "stderr-loop")
		if pipe.log == nil || pipe.stderrLoop == nil {
			return errors.New("dpsflow kernel: the interpreter process needs its supervisor's pipes on fds 5 and 6")
		}
	}
	return serveInProcess(ctx, info, pipe, session)
}

// supervisor owns the kernel's sockets and forwards messages to and from the
// interpreter process. When that process dies it answers the cell that was running
// with an error naming the cause, and starts a fresh one.
type supervisor struct {
	info     *ConnectionInfo
	connFile string
	signer   *Signer
	opts     Options
	session  string
	log      *log.Logger
	logw     io.Writer

	shell, control, stdin, iopub, hb zmq4.Socket
	sendMu                           sync.Mutex
	in                               chan inbound // from the front end, to forward

	mu       sync.Mutex
	child    *child
	retry    *inbound      // a message the last child died before reading
	pending  []*pendingReq // execute_requests forwarded and not answered, oldest first
	last     *Message      // the last execute_request answered
	notice   string        // for the next cell: why the kernel restarted since the last one
	shutdown bool
}

type inbound struct {
	ch     byte
	frames [][]byte
}

type pendingReq struct {
	msg   *Message
	count int // its execution count, from execute_input
}

// child is one interpreter process.
type child struct {
	cmd       *exec.Cmd
	toChild   *os.File
	started   time.Time
	done      chan struct{} // closed when the process has ended and its output is read
	fwdDone   chan struct{} // closed when toChild has stopped forwarding to it
	waitErr   error
	tail      *tail
	memKilled atomic.Int64 // resident bytes when the watchdog killed it; 0 when it did not
	talked    atomic.Bool  // it sent a message
	dead      bool         // under supervisor.mu: the process ended; forward nothing more
}

func newSupervisor(info *ConnectionInfo, connFile string, opts Options, logw io.Writer) (*supervisor, error) {
	signer, err := NewSigner(info.SignatureScheme, []byte(info.Key))
	if err != nil {
		return nil, err
	}
	return &supervisor{info: info, connFile: connFile, signer: signer, opts: opts, session: newID(),
		log: log.New(logw, "dpsflow kernel: ", log.LstdFlags), logw: logw,
		in: make(chan inbound, 4096)}, nil
}

// run binds the sockets and keeps an interpreter process running until a
// shutdown_request or until ctx is done.
func (s *supervisor) run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var closeAll func()
	var err error
	s.shell, s.control, s.stdin, s.iopub, s.hb, closeAll, err = bindSockets(ctx, s.info, s.log)
	defer closeAll()
	if err != nil {
		return err
	}
	go s.heartbeat(ctx)
	go s.receive(ctx, s.shell, chShell)
	go s.receive(ctx, s.control, chControl)

	// SIGINT interrupts the cell (interrupt_mode "signal"): pass it on.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case <-sigs:
				s.mu.Lock()
				c := s.child
				s.mu.Unlock()
				if c != nil {
					_ = c.cmd.Process.Signal(os.Interrupt)
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	quickDeaths := 0
	for {
		c, err := s.start()
		if err != nil {
			return fmt.Errorf("starting the interpreter process: %w", err)
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			_ = c.cmd.Process.Kill()
			<-c.done
			return nil
		}
		<-c.fwdDone // a request it held is in s.retry now, for the next child
		s.mu.Lock()
		shutdown := s.shutdown
		s.mu.Unlock()
		if shutdown {
			time.Sleep(50 * time.Millisecond) // let the shutdown_reply leave
			return nil
		}
		ename, evalue, details := c.cause(s.opts.MaxMemory)
		s.log.Printf("the interpreter process ended (%s: %s); starting a fresh one", ename, evalue)
		s.report(c, ename, evalue, details)
		// A process that dies before it says anything will die again: give up after
		// three in a row rather than restart forever.
		if !c.talked.Load() && time.Since(c.started) < 10*time.Second {
			if quickDeaths++; quickDeaths >= 3 {
				return fmt.Errorf("the interpreter process died at start three times: %s: %s", ename, evalue)
			}
		} else {
			quickDeaths = 0
		}
	}
}

// start runs a fresh interpreter process and the goroutines that serve it.
func (s *supervisor) start() (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+s.connFile, childSessionEnv+"="+s.session,
		childMemEnv+"="+strconv.FormatInt(s.opts.MaxMemory, 10))
	toR, toW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	files := []*os.File{toR, toW, fromR, fromW, errR, errW}
	cmd.ExtraFiles = []*os.File{toR, fromW}
	var logR, logW, loopR, loopW *os.File
	if canCapture { // fd 5: the kernel's log; fd 6: its stderr, passed back (see capture)
		if logR, logW, err = os.Pipe(); err == nil {
			loopR, loopW, err = os.Pipe()
		}
		if err != nil {
			return nil, err
		}
		files = append(files, logR, logW, loopR, loopW)
		cmd.ExtraFiles = append(cmd.ExtraFiles, logW, loopR)
	}
	cmd.Stdout, cmd.Stderr = s.logw, errW
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	for _, f := range []*os.File{toR, fromW, errW, logW, loopR} {
		if f != nil {
			f.Close()
		}
	}
	c := &child{cmd: cmd, toChild: toW, started: time.Now(), done: make(chan struct{}), fwdDone: make(chan struct{}), tail: &tail{}}
	s.mu.Lock()
	s.child = c
	s.mu.Unlock()

	var readers sync.WaitGroup
	readers.Add(2)
	if canCapture {
		readers.Add(1)
		go func() { defer readers.Done(); s.readLines(c, logR, true, nil); logR.Close() }()
		go func() { defer readers.Done(); s.readLines(c, errR, false, loopW); loopW.Close(); errR.Close() }()
	} else {
		go func() { defer readers.Done(); s.readLines(c, errR, true, nil); errR.Close() }()
	}
	go func() { defer readers.Done(); s.fromChild(c, fromR); fromR.Close() }()
	go func() { defer close(c.fwdDone); s.toChild(c) }()
	if s.opts.MaxMemory > 0 {
		go s.watch(c)
	}
	go func() {
		c.waitErr = cmd.Wait()
		s.mu.Lock()
		c.dead = true // what toChild takes from now on is for the next child
		s.mu.Unlock()
		// What the process wrote before it died explains it: read it all, unless a
		// process it started holds the pipes open.
		finished := make(chan struct{})
		go func() { readers.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(2 * time.Second):
		}
		toW.Close()
		close(c.done)
	}()
	return c, nil
}

// receive reads requests from a front-end socket and queues them for the child.
func (s *supervisor) receive(ctx context.Context, sock zmq4.Socket, ch byte) {
	for {
		raw, err := sock.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Printf("%s: receive: %v", channelNames[ch], err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case s.in <- inbound{ch: ch, frames: raw.Frames}:
		case <-ctx.Done():
			return
		}
	}
}

// toChild forwards the front end's requests to c until it ends.
func (s *supervisor) toChild(c *child) {
	for {
		var m inbound
		s.mu.Lock()
		r := s.retry
		s.retry = nil
		s.mu.Unlock()
		if r != nil {
			m = *r
		} else {
			select {
			case m = <-s.in:
			case <-c.done:
				return
			}
		}
		var req *Message
		if m.ch == chShell {
			if msg, err := s.signer.Decode(m.frames); err == nil && msg.Header.MsgType == "execute_request" {
				req = msg
			}
		}
		s.mu.Lock()
		if c.dead { // the next child gets it
			s.retry = &m
			s.mu.Unlock()
			return
		}
		if req != nil {
			s.pending = append(s.pending, &pendingReq{msg: req})
		}
		s.mu.Unlock()
		if err := writeFrames(c.toChild, m.ch, m.frames); err != nil {
			// The child died: an execute_request is pending, and answered by the report;
			// anything else goes to the next child.
			if req == nil {
				s.mu.Lock()
				s.retry = &m
				s.mu.Unlock()
			}
			return
		}
	}
}

// fromChild sends what the child writes to the front end, noting the replies.
func (s *supervisor) fromChild(c *child, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		ch, frames, err := readFrames(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				s.log.Printf("interpreter process: %v", err)
			}
			return
		}
		c.talked.Store(true)
		msg, _ := s.signer.Decode(frames)
		sock := s.shell
		switch ch {
		case chControl:
			sock = s.control
		case chIOPub:
			sock = s.iopub
		}
		s.sendFrames(sock, frames)
		if msg != nil {
			s.note(ch, msg)
		}
	}
}

// note tracks the replies that matter for a restart.
func (s *supervisor) note(ch byte, msg *Message) {
	var parent Header
	_ = json.Unmarshal(msg.Parent, &parent)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ch == chShell && msg.Header.MsgType == "execute_reply":
		for i, p := range s.pending {
			if p.msg.Header.MsgID == parent.MsgID {
				s.last = p.msg
				s.pending = append(s.pending[:i], s.pending[i+1:]...)
				break
			}
		}
	case ch == chIOPub && msg.Header.MsgType == "execute_input":
		var c struct {
			Count int `json:"execution_count"`
		}
		_ = json.Unmarshal(msg.Content, &c)
		for _, p := range s.pending {
			if p.msg.Header.MsgID == parent.MsgID {
				p.count = c.Count
				if s.notice != "" {
					s.publishLocked(p.msg, "stream", map[string]any{"name": "stderr", "text": s.notice + "\n"})
					s.notice = ""
				}
			}
		}
	case ch == chControl && msg.Header.MsgType == "shutdown_reply":
		s.shutdown = true
		if c := s.child; c != nil {
			go func() { // it exits by itself; one stuck in compiled code is stopped
				select {
				case <-c.done:
				case <-time.After(5 * time.Second):
					_ = c.cmd.Process.Kill()
				}
			}()
		}
	}
}

// report answers the requests the dead child left: the running cell gets the error,
// the queued ones are aborted. A death between cells is told under the last cell and
// again in the next one.
func (s *supervisor) report(c *child, ename, evalue string, details []string) {
	const lost = "The kernel restarted: the variables, functions and imports of earlier cells are gone; run the cells you need again."
	s.mu.Lock()
	defer s.mu.Unlock()
	c.dead = true
	pending, last := s.pending, s.last
	s.pending = nil
	value := evalue + " (the kernel restarted)"
	tb := append(append([]string{ename + ": " + value}, details...), lost)
	if len(pending) > 0 {
		p := pending[0]
		s.publishLocked(p.msg, "error", map[string]any{"ename": ename, "evalue": value, "traceback": tb})
		s.sendLocked(s.shell, p.msg, "execute_reply", map[string]any{"status": "error", "execution_count": p.count,
			"ename": ename, "evalue": value, "traceback": tb, "user_expressions": map[string]any{}})
		s.publishLocked(p.msg, "status", map[string]any{"execution_state": "idle"})
		for _, q := range pending[1:] {
			s.publishLocked(q.msg, "status", map[string]any{"execution_state": "busy"})
			s.sendLocked(s.shell, q.msg, "execute_reply", map[string]any{"status": "aborted", "execution_count": q.count,
				"user_expressions": map[string]any{}})
			s.publishLocked(q.msg, "status", map[string]any{"execution_state": "idle"})
		}
		s.notice = ""
		return
	}
	text := strings.Join(tb, "\n")
	if last != nil {
		s.publishLocked(last, "stream", map[string]any{"name": "stderr", "text": text + "\n"})
	}
	s.notice = "After the previous cell ended, " + text
}

// cause names why the child ended, from its exit status and its last stderr lines.
func (c *child) cause(maxMem int64) (ename, evalue string, details []string) {
	if rss := c.memKilled.Load(); rss > 0 {
		return "MemoryLimit", fmt.Sprintf("the cell used more memory than the kernel's --max-memory of %s allows (%s resident); "+
			"the interpreter was stopped", FormatMemory(maxMem), FormatMemory(rss)), nil
	}
	lines, key := c.tail.get()
	var frames []string // the cell lines a goroutine's panic went through, innermost first
	for _, l := range key {
		if m := panicPos.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			fn := strings.TrimPrefix(strings.TrimPrefix(m[3], "main."), "main")
			if fn == "" {
				fn = "cell"
			}
			frames = append(frames, fmt.Sprintf("  at cell line %s:%s in %s", m[1], m[2], fn))
		}
	}
	for _, l := range key {
		if msg, ok := strings.CutPrefix(l, "fatal error: "); ok {
			if strings.Contains(msg, "out of memory") {
				return "OutOfMemory", "the interpreter ran out of memory (" + l + ")", outOfMemoryDetail(key)
			}
			return "FatalError", "the Go runtime stopped the interpreter: " + l, stackHead(lines)
		}
	}
	for _, l := range key {
		if msg, ok := strings.CutPrefix(l, "panic: "); ok {
			msg = recoveredNote.ReplaceAllString(msg, "")
			if strings.HasPrefix(msg, "os.Exit(") || strings.HasPrefix(msg, "log.Fatal") {
				return "Exit", "a goroutine of a cell called " + msg + ", which ends the kernel's process from a goroutine", frames
			}
			if len(frames) > 0 {
				return "GoroutinePanic", "a goroutine panicked: " + msg, frames
			}
			return "GoroutinePanic", "a goroutine panicked: " + msg, stackHead(lines)
		}
	}
	var exit *exec.ExitError
	if errors.As(c.waitErr, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			v := fmt.Sprintf("the interpreter process was killed by signal %q", ws.Signal())
			if ws.Signal() == syscall.SIGKILL {
				v += " (the system's out-of-memory killer ends processes this way)"
			}
			return "Killed", v, lastLines(lines, 10)
		}
		if exit.ExitCode() == 2 && len(stackHead(lines)) > 0 { // the runtime's crash, its first line lost
			return "FatalError", "the Go runtime stopped the interpreter (exit status 2)", stackHead(lines)
		}
		return "Exit", fmt.Sprintf("the interpreter process exited with status %d "+
			"(compiled code called os.Exit or log.Fatal, which cells cannot intercept)", exit.ExitCode()), lastLines(lines, 10)
	}
	if c.waitErr != nil {
		return "Exit", "the interpreter process ended: " + c.waitErr.Error(), lastLines(lines, 10)
	}
	return "Exit", "the interpreter process exited with status 0 (compiled code called os.Exit(0))", lastLines(lines, 10)
}

var recoveredNote = regexp.MustCompile(`\s*\[recovered[^\]]*\]\s*$`)

// outOfMemoryDetail is the runtime's line on the allocation that failed.
func outOfMemoryDetail(key []string) []string {
	for _, l := range key {
		if strings.HasPrefix(l, "runtime: out of memory") {
			return []string{"  " + l}
		}
	}
	return nil
}

// stackHead is the first frames of the crashing goroutine's stack that are neither
// the runtime's nor the interpreter's: the compiled code involved (the whole stack is
// in the kernel's log).
func stackHead(lines []string) []string {
	var out []string
	in := false
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\n")
		if strings.HasPrefix(l, "goroutine ") {
			if in {
				break
			}
			in = true
			continue
		}
		if !in || strings.HasPrefix(l, "\t") || strings.TrimSpace(l) == "" {
			continue
		}
		fn := l
		if skipFrame.MatchString(fn) {
			continue
		}
		out = append(out, "  "+fn)
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "\t") {
			out = append(out, "  "+strings.TrimRight(lines[i+1], "\n"))
		}
		if len(out) >= 8 {
			break
		}
	}
	if len(out) > 0 {
		out = append(out, "  (the whole stack is in the kernel's log)")
	}
	return out
}

var skipFrame = regexp.MustCompile(`^(runtime\.|reflect\.|github\.com/traefik/yaegi/|panic\(|created by )`)

func lastLines(lines []string, n int) []string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = "  " + strings.TrimRight(l, "\n")
	}
	return out
}

// readLines reads the child's log, or its stderr (with echo false: that is the cells'
// output), keeping the lines written since the last cell ended; echo copies them to
// the server's log, loop (when set) gets everything as it came.
func (s *supervisor) readLines(c *child, r io.Reader, echo bool, loop io.Writer) {
	buf := make([]byte, 32<<10)
	var line []byte
	for {
		n, err := r.Read(buf)
		if n > 0 && loop != nil {
			if _, werr := loop.Write(buf[:n]); werr != nil {
				loop = nil // the child is gone; keep reading its last words
			}
		}
		line = append(line, buf[:n]...)
		for {
			i := bytes.IndexByte(line, '\n')
			if i < 0 {
				break
			}
			s.line(c, string(bytes.ReplaceAll(line[:i+1], sentinel, nil)), echo)
			line = line[i+1:]
		}
		if err != nil {
			if len(line) > 0 {
				s.line(c, string(bytes.ReplaceAll(line, sentinel, nil))+"\n", echo)
			}
			return
		}
	}
}

func (s *supervisor) line(c *child, l string, echo bool) {
	switch {
	case strings.HasPrefix(l, cellEndMarker):
		c.tail.reset()
	case strings.HasPrefix(l, frameMarker):
		c.tail.add(strings.TrimPrefix(l, frameMarker))
	case strings.TrimSpace(l) == "":
		if echo {
			io.WriteString(s.logw, l)
		}
	default:
		if echo {
			io.WriteString(s.logw, l)
		}
		c.tail.add(l)
	}
}

// watch kills the child when its resident memory passes the bound: a cell that
// allocates without end must not take the machine (or the kernel's
// process, by the out-of-memory killer) with it.
func (s *supervisor) watch(c *child) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			rss, err := residentMemory(c.cmd.Process.Pid)
			if err != nil {
				select {
				case <-c.done: // it ended
				case <-time.After(time.Second):
					s.log.Printf("--max-memory %s is not enforced: %v", FormatMemory(s.opts.MaxMemory), err)
				}
				return
			}
			if rss > s.opts.MaxMemory {
				c.memKilled.Store(rss)
				_ = c.cmd.Process.Kill()
				return
			}
		}
	}
}

func (s *supervisor) heartbeat(ctx context.Context) { echoHeartbeats(ctx, s.hb, s.log) }

func (s *supervisor) sendFrames(sock zmq4.Socket, frames [][]byte) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := sock.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		s.log.Printf("sending: %v", err)
	}
}

// sendLocked and publishLocked send the supervisor's own messages (s.mu held).
func (s *supervisor) sendLocked(sock zmq4.Socket, parent *Message, msgType string, content any) {
	m, err := reply(s.session, parent, msgType, content)
	if err != nil {
		s.log.Print(err)
		return
	}
	frames, err := s.signer.Encode(m)
	if err != nil {
		s.log.Print(err)
		return
	}
	s.sendFrames(sock, frames)
}

func (s *supervisor) publishLocked(parent *Message, msgType string, content any) {
	m, err := reply(s.session, parent, msgType, content)
	if err != nil {
		s.log.Print(err)
		return
	}
	m.Identities = [][]byte{[]byte(msgType)}
	frames, err := s.signer.Encode(m)
	if err != nil {
		s.log.Print(err)
		return
	}
	s.sendFrames(s.iopub, frames)
}

// tail keeps the last lines of the child's stderr and log, and apart from them the
// lines that say why it crashed, which a long stack dump would push out.
type tail struct {
	mu  sync.Mutex
	l   []string
	key []string
}

const tailLines = 400

var keyLine = regexp.MustCompile(`^(fatal error: |panic: |runtime: out of memory)|^(?:cell|_\.go)?:?\d+:\d+: panic: `)

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.l = append(t.l, line)
	if len(t.l) > 2*tailLines {
		t.l = append(t.l[:0], t.l[len(t.l)-tailLines:]...)
	}
	if l := strings.TrimSpace(line); keyLine.MatchString(l) && len(t.key) < 100 {
		t.key = append(t.key, l)
	}
}

func (t *tail) reset() {
	t.mu.Lock()
	t.l, t.key = nil, nil
	t.mu.Unlock()
}

// get returns the last lines and the key lines, in order.
func (t *tail) get() (lines, key []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines = t.l
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return append([]string(nil), lines...), append([]string(nil), t.key...)
}
