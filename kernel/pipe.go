package kernel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/go-zeromq/zmq4"
)

// The supervisor and the interpreter process exchange ZeroMQ messages over two
// pipes, each message as: channel byte, frame count, then each frame as its length
// and bytes (uint32 big-endian). The frames are the Jupyter wire frames, signed by
// the child, so that the supervisor only forwards them.
const (
	chShell byte = iota
	chControl
	chIOPub
	numChannels
)

var channelNames = [numChannels]string{"shell", "control", "iopub"}

// maxFrame bounds one frame read from a pipe, so that a corrupted length cannot
// make the reader allocate without limit.
const maxFrame = 1 << 30

func writeFrames(w io.Writer, ch byte, frames [][]byte) error {
	var hdr [5]byte
	hdr[0] = ch
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(frames)))
	buf := append([]byte(nil), hdr[:]...)
	for _, f := range frames {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(f)))
		buf = append(buf, f...)
	}
	_, err := w.Write(buf)
	return err
}

func readFrames(r *bufio.Reader) (byte, [][]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	ch, n := hdr[0], binary.BigEndian.Uint32(hdr[1:])
	if ch >= numChannels || n > 1<<16 {
		return 0, nil, fmt.Errorf("kernel pipe: bad message header (channel %d, %d frames)", ch, n)
	}
	frames := make([][]byte, n)
	for i := range frames {
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		size := binary.BigEndian.Uint32(l[:])
		if size > maxFrame {
			return 0, nil, fmt.Errorf("kernel pipe: frame of %d bytes", size)
		}
		frames[i] = make([]byte, size)
		if _, err := io.ReadFull(r, frames[i]); err != nil {
			return 0, nil, err
		}
	}
	return ch, frames, nil
}

// pipeConn is the interpreter process's end: three sockets that read the messages
// the supervisor forwards and write replies and iopub messages back.
type pipeConn struct {
	// log is the kernel's log, and stderrLoop gives back what the process wrote to its
	// stderr, when the supervisor reads that (see capture); nil otherwise.
	log, stderrLoop *os.File

	wmu  sync.Mutex
	w    io.Writer
	in   [numChannels]chan zmq4.Msg
	done chan struct{} // closed when the supervisor's pipe ends
	once sync.Once
}

func newPipeConn(r io.Reader, w io.Writer) *pipeConn {
	p := &pipeConn{w: w, done: make(chan struct{})}
	for i := range p.in {
		p.in[i] = make(chan zmq4.Msg, 64)
	}
	go func() {
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			ch, frames, err := readFrames(br)
			if err != nil {
				p.close()
				return
			}
			select {
			case p.in[ch] <- zmq4.NewMsgFrom(frames...):
			case <-p.done:
				return
			}
		}
	}()
	return p
}

func (p *pipeConn) close() { p.once.Do(func() { close(p.done) }) }

func (p *pipeConn) socket(ch byte) zmq4.Socket { return &pipeSocket{p: p, ch: ch} }

// pipeSocket lets the Kernel's code for ZeroMQ sockets run over the pipes.
type pipeSocket struct {
	p  *pipeConn
	ch byte
}

var errPipeClosed = errors.New("kernel pipe closed")

func (s *pipeSocket) Send(m zmq4.Msg) error {
	s.p.wmu.Lock()
	defer s.p.wmu.Unlock()
	return writeFrames(s.p.w, s.ch, m.Frames)
}

func (s *pipeSocket) SendMulti(m zmq4.Msg) error { return s.Send(m) }

func (s *pipeSocket) Recv() (zmq4.Msg, error) {
	select {
	case m := <-s.p.in[s.ch]:
		return m, nil
	case <-s.p.done:
		return zmq4.Msg{}, errPipeClosed
	}
}

func (s *pipeSocket) Close() error          { return nil }
func (s *pipeSocket) Listen(string) error   { return nil }
func (s *pipeSocket) Dial(string) error     { return errors.New("kernel pipe: cannot dial") }
func (s *pipeSocket) Type() zmq4.SocketType { return zmq4.Router }
func (s *pipeSocket) Addr() net.Addr        { return nil }
func (s *pipeSocket) GetOption(string) (interface{}, error) {
	return nil, errors.New("kernel pipe: no options")
}
func (s *pipeSocket) SetOption(string, interface{}) error { return nil }
