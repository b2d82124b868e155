package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pickleArg is how a pickle opcode's argument is laid out.
type pickleArg struct {
	fixed int  // bytes of fixed-size argument (for a length: the size of the length field)
	data  bool // the fixed bytes are a little-endian length of data that follows
	lines int  // newline-terminated text arguments
}

// pickleOps lists every opcode of pickle protocols 0–5 (Python's pickletools).
var pickleOps = func() map[byte]pickleArg {
	m := map[byte]pickleArg{}
	for _, op := range []byte("(.012N)]}aebdlsutRQo\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98") {
		m[byte(op)] = pickleArg{}
	}
	for _, op := range []byte("ILFSVPpg") {
		m[byte(op)] = pickleArg{lines: 1}
	}
	m['c'], m['i'] = pickleArg{lines: 2}, pickleArg{lines: 2}
	for op, n := range map[byte]int{'K': 1, 'q': 1, 'h': 1, '\x80': 1, '\x82': 1, 'M': 2, '\x83': 2, 'J': 4, 'r': 4, 'j': 4, '\x84': 4, 'G': 8} {
		m[op] = pickleArg{fixed: n}
	}
	for op, n := range map[byte]int{'U': 1, 'C': 1, '\x8c': 1, '\x8a': 1, 'T': 4, 'X': 4, 'B': 4, '\x8b': 4, '\x8d': 8, '\x8e': 8, '\x96': 8} {
		m[op] = pickleArg{fixed: n, data: true}
	}
	m['\x95'] = pickleArg{fixed: 8} // FRAME: its size is checked below, its content is opcodes
	return m
}()

// maxPickleLine bounds a text argument (a GLOBAL's module, a protocol-0 number).
const maxPickleLine = 1 << 16

// readPickle reads one pickle (up to and including its STOP opcode) from r and returns its
// bytes, having checked every length in it against limit, the bytes r can still hold.
// gopickle allocates what a length field says before reading, so a 4 KB file claiming a
// 4 GB string would otherwise cost 4 GB; here nothing is allocated that r does not hold.
func readPickle(r *bufio.Reader, limit int64) ([]byte, error) {
	var out bytes.Buffer
	take := func(n int64) ([]byte, error) {
		if n < 0 || n > limit-int64(out.Len()) {
			return nil, fmt.Errorf("pickle: %d bytes claimed at offset %d, past the end of the data", n, out.Len())
		}
		start := out.Len()
		if _, err := io.CopyN(&out, r, n); err != nil {
			return nil, fmt.Errorf("pickle truncated at offset %d: %w", out.Len(), noEOF(err))
		}
		return out.Bytes()[start:], nil
	}
	for {
		op, err := take(1)
		if err != nil {
			return nil, err
		}
		arg, ok := pickleOps[op[0]]
		if !ok {
			return nil, fmt.Errorf("pickle: unknown opcode 0x%02x at offset %d", op[0], out.Len()-1)
		}
		if op[0] == '.' {
			return out.Bytes(), nil
		}
		for range arg.lines {
			line, err := r.ReadSlice('\n')
			if err != nil || len(line) > maxPickleLine || int64(out.Len()+len(line)) > limit {
				return nil, fmt.Errorf("pickle: text argument at offset %d is not a line", out.Len())
			}
			out.Write(line)
		}
		if arg.fixed == 0 {
			continue
		}
		b, err := take(int64(arg.fixed))
		if err != nil {
			return nil, err
		}
		var n uint64
		switch arg.fixed {
		case 1:
			n = uint64(b[0])
		case 2:
			n = uint64(binary.LittleEndian.Uint16(b))
		case 4:
			n = uint64(binary.LittleEndian.Uint32(b))
		case 8:
			n = binary.LittleEndian.Uint64(b)
		}
		switch {
		case arg.data:
			if n > uint64(limit) {
				return nil, fmt.Errorf("pickle: %d bytes claimed at offset %d, past the end of the data", n, out.Len())
			}
			if _, err := take(int64(n)); err != nil {
				return nil, err
			}
		case op[0] == '\x95' && n > uint64(limit-int64(out.Len())):
			return nil, errors.New("pickle: a frame is larger than the data left")
		}
	}
}
