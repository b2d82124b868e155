// Package npy reads and writes NumPy .npy files as GoMLX tensors, for exchanging arrays
// with other implementations (dpsflow model eval, dpsflow step). float32/float64/int32/
// int64 arrays of any rank are supported, C order only. The reader is written here
// (not npyio) so that the header and the data length are checked against the file size
// before anything is allocated: a damaged or hostile header is an error naming the file,
// never a panic, an allocation the file cannot back, or invented data.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"

	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Read loads a .npy file. Errors name the file.
func Read(path string) (*tensors.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// header is the parsed dictionary of a .npy header.
type header struct {
	descr   string
	fortran bool
	shape   []int
}

const magic = "\x93NUMPY"

// decode parses a whole .npy file held in b.
func decode(b []byte) (*tensors.Tensor, error) {
	if len(b) < len(magic)+2 || string(b[:len(magic)]) != magic {
		return nil, errors.New("not a .npy file (no \\x93NUMPY magic)")
	}
	major, minor := b[6], b[7]
	var hlen, start int
	switch major {
	case 1:
		if len(b) < 10 {
			return nil, errors.New("not a .npy file: truncated before the header length")
		}
		hlen, start = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, errors.New("not a .npy file: truncated before the header length")
		}
		n := binary.LittleEndian.Uint32(b[8:12])
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("header length %d is past the end of the file (%d bytes)", n, len(b))
		}
		hlen, start = int(n), 12
	default:
		return nil, fmt.Errorf("format version %d.%d is not supported (1.0, 2.0, 3.0)", major, minor)
	}
	if start+hlen > len(b) {
		return nil, fmt.Errorf("header length %d is past the end of the file (%d bytes)", hlen, len(b))
	}
	text := string(b[start : start+hlen])
	if !strings.HasSuffix(text, "\n") {
		return nil, errors.New("header does not end with a newline (file truncated or not a .npy file)")
	}
	h, err := parseHeader(strings.TrimRight(text, " \n"))
	if err != nil {
		return nil, fmt.Errorf("header %q: %w", strings.TrimRight(text, " \n"), err)
	}
	if h.fortran {
		return nil, errors.New("Fortran-ordered arrays are not supported; save with np.ascontiguousarray")
	}
	var order binary.ByteOrder = binary.LittleEndian
	descr := h.descr
	if len(descr) == 3 {
		switch descr[0] {
		case '<', '=':
		case '>':
			order = binary.BigEndian
		default:
			descr = "?"
		}
		descr = descr[1:]
	}
	size := map[string]int{"f4": 4, "f8": 8, "i4": 4, "i8": 8}[descr]
	if size == 0 {
		return nil, fmt.Errorf("dtype %q is not supported (float32, float64, int32, int64)", h.descr)
	}
	// The element count is checked against the bytes present before any allocation, with
	// overflow-safe products: a header cannot make us allocate more than the file holds.
	data := b[start+hlen:]
	n := uint64(1)
	for _, d := range h.shape {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > uint64(len(data)) {
			return nil, fmt.Errorf("shape %v needs more data than the file holds (%d bytes after the header)", h.shape, len(data))
		}
		n = lo
	}
	if n == 0 {
		return nil, fmt.Errorf("shape %v has no elements; empty arrays are not supported", h.shape)
	}
	if need := n * uint64(size); need != uint64(len(data)) {
		if need > uint64(len(data)) {
			return nil, fmt.Errorf("shape %v of %s needs %d data bytes but the file holds %d (truncated?)", h.shape, h.descr, need, len(data))
		}
		return nil, fmt.Errorf("shape %v of %s needs %d data bytes but the file holds %d (%d extra bytes)", h.shape, h.descr, need, len(data), uint64(len(data))-need)
	}
	switch descr {
	case "f4":
		return build(data, h.shape, 4, func(p []byte) float32 { return math.Float32frombits(order.Uint32(p)) }), nil
	case "f8":
		return build(data, h.shape, 8, func(p []byte) float64 { return math.Float64frombits(order.Uint64(p)) }), nil
	case "i4":
		return build(data, h.shape, 4, func(p []byte) int32 { return int32(order.Uint32(p)) }), nil
	default:
		return build(data, h.shape, 8, func(p []byte) int64 { return int64(order.Uint64(p)) }), nil
	}
}

func build[T float32 | float64 | int32 | int64](data []byte, dims []int, size int, get func([]byte) T) *tensors.Tensor {
	flat := make([]T, len(data)/size)
	for i := range flat {
		flat[i] = get(data[i*size:])
	}
	if len(dims) == 0 {
		return tensors.FromValue(flat[0])
	}
	return tensors.FromFlatDataAndDimensions(flat, dims...)
}

// parseHeader reads the Python dict literal of a .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }. Exactly the three keys
// NumPy writes are accepted, each once.
func parseHeader(s string) (header, error) {
	var h header
	p := &lit{s: s}
	if !p.eat('{') {
		return h, errors.New("not a dictionary")
	}
	seen := map[string]bool{}
	for !p.eat('}') {
		key, err := p.str()
		if err != nil {
			return h, err
		}
		if seen[key] {
			return h, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		if !p.eat(':') {
			return h, fmt.Errorf("no ':' after key %q", key)
		}
		switch key {
		case "descr":
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("descr: %w (structured dtypes are not supported)", err)
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				h.fortran = true
			case p.word("False"):
			default:
				return h, errors.New("fortran_order is not True or False")
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("unknown key %q", key)
		}
		if !p.eat(',') && !p.peek('}') {
			return h, fmt.Errorf("no ',' or '}' after %q", key)
		}
	}
	p.skip()
	if p.i != len(p.s) {
		return h, errors.New("text after the closing '}'")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("key %q is missing", k)
		}
	}
	return h, nil
}

// lit is a cursor over a Python literal.
type lit struct {
	s string
	i int
}

func (p *lit) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *lit) peek(c byte) bool { p.skip(); return p.i < len(p.s) && p.s[p.i] == c }

func (p *lit) eat(c byte) bool {
	if p.peek(c) {
		p.i++
		return true
	}
	return false
}

func (p *lit) word(w string) bool {
	p.skip()
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

// str reads a quoted string without escapes (NumPy's keys and dtype strings have none).
func (p *lit) str() (string, error) {
	p.skip()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("expected a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

// tuple reads a tuple of non-negative ints such as (), (3,), (2, 3) or Python 2's (3L,).
func (p *lit) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("not a tuple")
	}
	dims := []int{}
	for !p.eat(')') {
		p.skip()
		j := p.i
		for j < len(p.s) && (p.s[j] == '-' || p.s[j] >= '0' && p.s[j] <= '9') {
			j++
		}
		d, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dimension %q is not an integer", p.s[p.i:j])
		}
		if d < 0 {
			return nil, fmt.Errorf("dimension %d is negative", d)
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		dims = append(dims, int(d))
		if !p.eat(',') && !p.peek(')') {
			return nil, errors.New("no ',' or ')' after a dimension")
		}
		if len(dims) > 64 {
			return nil, errors.New("more than 64 dimensions")
		}
	}
	return dims, nil
}

// Write saves t as a .npy file (format 1.0, C order, little-endian), atomically
// (temporary file, then rename). npyio only writes nested Go slices, so the header is
// written here.
func Write(path string, t *tensors.Tensor) error {
	descr := map[dtypes.DType]string{dtypes.Float32: "<f4", dtypes.Float64: "<f8", dtypes.Int32: "<i4", dtypes.Int64: "<i8"}[t.DType()]
	if descr == "" {
		return fmt.Errorf("%s: dtype %s is not supported", path, t.DType())
	}
	shape := "("
	for _, d := range t.Shape().Dimensions {
		shape += fmt.Sprintf("%d, ", d)
	}
	if t.Rank() > 1 {
		shape = strings.TrimSuffix(shape, " ")
		shape = strings.TrimSuffix(shape, ",")
	} else {
		shape = strings.TrimSuffix(shape, " ")
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s), }", descr, shape)
	// Magic (6) + version (2) + length (2) + header + "\n", padded to 64 bytes.
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	var buf bytes.Buffer
	buf.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&buf, binary.LittleEndian, uint16(len(header)))
	buf.WriteString(header)
	var err error
	t.ConstFlatData(func(flat any) { err = binary.Write(&buf, binary.LittleEndian, flat) })
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}
