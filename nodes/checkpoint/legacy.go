package checkpoint

// Reading torch.save's legacy (non-zip) format.
//
// PyTorch < 1.6 (and torch.save(..., _use_new_zipfile_serialization=False) since) writes
// one stream:
//
//  1. pickle: the magic number 0x1950a86a20f9469cfc6c (protocol 2, so the file starts
//     with legacyTorchMagic);
//  2. pickle: the protocol version, 1001;
//  3. pickle: the system info, {"protocol_version", "little_endian", "type_sizes"};
//  4. pickle: the object itself, storages as persistent ids ("storage", class, key,
//     location, numel, view_metadata); the key is the storage's address in the saving
//     process, so files are not byte-reproducible;
//  5. pickle: the list of storage keys, sorted;
//  6. per key, in that order: the element count as an int64 and the raw elements, both in
//     the saver's byte order.
//
// Everything after the pickles is shared with the zip reader: the state dict is chosen by
// selectStateDict and tensors are built by materialiseStorage. Storages no tensor of the
// state dict uses (an optimizer's, a classifier's when only part is wanted) are stepped
// over, not kept in memory.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/nlpodyssey/gopickle/types"
)

// legacyTorchMagic starts a legacy (pre-1.6, non-zip) torch.save file: pickle protocol 2
// and the magic number 0x1950a86a20f9469cfc6c as a LONG1.
var legacyTorchMagic = []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8")

// legacyProtocolVersion is the only version of the legacy format there is.
const legacyProtocolVersion = 1001

// readLegacy reads the state dict (see selectStateDict; entry as in ReadPyTorchEntry) of a
// legacy torch.save file. Errors do not repeat the path; the caller adds it.
func readLegacy(path, entry string) (ts map[string]*tensors.Tensor, err error) {
	defer func() { // gopickle may panic on malformed input
		if r := recover(); r != nil {
			ts, err = nil, fmt.Errorf("malformed legacy torch.save file: %v", r)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	cr := &countingReader{r: f}
	br := bufio.NewReaderSize(cr, int(min(info.Size()+1, 1<<20))) // no 1 MB buffer for a small file
	storages := map[string]*torchStorage{}
	load := func(what string) (any, error) {
		// Each pickle is read (lengths checked against what is left of the file) before
		// gopickle decodes it; storage bytes are read from br directly.
		pkl, err := readPickle(br, info.Size()-(cr.n-int64(br.Buffered())))
		if err != nil {
			return nil, fmt.Errorf("legacy torch.save file: reading the %s: %w", what, err)
		}
		pr := &py2CompatReader{r: bufio.NewReader(bytes.NewReader(pkl))}
		v, err := newUnpickler(pr, legacyFindClass, storages).Load()
		if err != nil {
			return nil, fmt.Errorf("legacy torch.save file: decoding the %s: %w", what, noEOF(err))
		}
		return v, nil
	}

	if _, err := load("magic number"); err != nil {
		return nil, err
	}
	if v, err := load("protocol version"); err != nil {
		return nil, err
	} else if p, _ := asInt(v); p != legacyProtocolVersion {
		return nil, fmt.Errorf("legacy torch.save file: unknown protocol version %v", v)
	}
	sysInfo, err := load("system info")
	if err != nil {
		return nil, err
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if items, ok := dictItems(sysInfo); ok {
		for _, it := range items {
			if k, _ := it.key.(string); k == "little_endian" {
				if le, _ := it.value.(bool); !le {
					order = binary.BigEndian
				}
			}
		}
	}
	obj, err := load("pickled object")
	if err != nil {
		return nil, err
	}
	named, err := selectStateDict(obj, entry)
	if err != nil {
		return nil, err
	}
	byStorage := groupByStorage(named)
	for _, views := range byStorage {
		if st := views[0].tensor.storage; st.kind == kindInvalid {
			return nil, fmt.Errorf("tensor %q: unsupported storage type %s", views[0].name, st.class)
		}
	}

	keysObj, err := load("storage key list")
	if err != nil {
		return nil, err
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, fmt.Errorf("legacy torch.save file: the storage key list is %s", pyTypeName(keysObj))
	}
	ts = make(map[string]*tensors.Tensor, len(named))
	left := len(byStorage) // storages whose tensors are still to be built
	seen := map[string]bool{}
	for _, k := range *keys {
		if left == 0 {
			break // the rest (optimizer state, unused buffers) is not needed
		}
		key, _ := k.(string)
		st, ok := storages[key]
		if !ok || seen[key] {
			return nil, fmt.Errorf("legacy torch.save file: storage %v is listed twice or not used by any object", k)
		}
		seen[key] = true
		var count int64
		if err := binary.Read(br, order, &count); err != nil {
			return nil, fmt.Errorf("storage %s: reading its element count: %w", key, noEOF(err))
		}
		if count != int64(st.numel) {
			return nil, fmt.Errorf("storage %s: %d elements in the data, %d in the pickle", key, count, st.numel)
		}
		views := byStorage[key]
		if st.kind == kindInvalid {
			// Not used by the state dict (checked above), but its byte size is unknown, so
			// the storages after it cannot be found.
			return nil, fmt.Errorf("storage %s of unsupported type %s precedes storages of the state dict", key, st.class)
		}
		n := st.byteSize()
		if n > uint64(info.Size()) {
			return nil, fmt.Errorf("storage %s: %d %s elements, more than the whole file holds", key, st.numel, st.class)
		}
		if views == nil {
			if _, err := br.Discard(int(n)); err != nil {
				return nil, fmt.Errorf("storage %s: skipping %d bytes: %w", key, n, noEOF(err))
			}
			continue
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(br, raw); err != nil {
			return nil, fmt.Errorf("tensor %q: reading storage %s (%d bytes): %w", views[0].name, key, n, noEOF(err))
		}
		if err := materialiseStorage(ts, views, raw, order == binary.BigEndian); err != nil {
			return nil, err
		}
		left--
	}
	if left > 0 {
		for _, views := range byStorage {
			if _, done := ts[views[0].name]; !done {
				return nil, fmt.Errorf("tensor %q: storage %s is not in the file's storage list", views[0].name, views[0].tensor.storage.key)
			}
		}
	}
	return ts, nil
}

// noEOF turns io.EOF, which would read as a clean end, into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// legacyFindClass is findClass plus Python 2's OrderedDict (see py2CompatReader).
func legacyFindClass(module, name string) (any, error) {
	if module == py2CompatModule && name == "OrderedDict" {
		return callFunc(newOrderedDict), nil
	}
	return findClass(module, name)
}

// Python 2 pickled an OrderedDict as a call OrderedDict([[k, v], ...]), which gopickle's
// built-in collections.OrderedDict refuses (it accepts no arguments) and which FindClass
// cannot override (gopickle resolves "collections" itself). py2CompatReader renames that
// one global, byte for byte, to py2CompatModule.OrderedDict, which legacyFindClass maps to
// newOrderedDict. The lpips package's weights/v0.1/*.pth were saved by Python 2. Python 3
// pickles an OrderedDict as OrderedDict() followed by SETITEMS, which works either way.
var (
	py2OrderedDict  = []byte("collections\nOrderedDict\n")
	py2CompatModule = "dpsflowcompat" // any name gopickle does not resolve itself
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// py2CompatReader passes a pickle stream through, rewriting the GLOBAL opcode
// "ccollections\nOrderedDict\n". gopickle reads opcodes and the text lines of GLOBAL with
// ReadByte and the payloads of strings and bytes with Read, so a payload is never
// rewritten; a crafted file could at worst decode to different (still inert) values.
type py2CompatReader struct {
	r       *bufio.Reader
	pending []byte
}

func (c *py2CompatReader) ReadByte() (byte, error) {
	if len(c.pending) > 0 {
		b := c.pending[0]
		c.pending = c.pending[1:]
		return b, nil
	}
	b, err := c.r.ReadByte()
	if err == nil && b == 'c' {
		if next, _ := c.r.Peek(len(py2OrderedDict)); bytes.Equal(next, py2OrderedDict) {
			c.r.Discard(len(py2OrderedDict))
			c.pending = []byte(py2CompatModule + "\nOrderedDict\n")
		}
	}
	return b, err
}

func (c *py2CompatReader) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.r.Read(p)
}

// newOrderedDict is collections.OrderedDict(items=()) for items a list of pairs.
func newOrderedDict(args ...any) (any, error) {
	d := types.NewOrderedDict()
	if len(args) == 0 {
		return d, nil
	}
	var items []any
	switch l := args[0].(type) {
	case *types.List:
		items = *l
	case *types.Tuple:
		items = *l
	default:
		return nil, fmt.Errorf("OrderedDict(%v): unsupported arguments", args)
	}
	if len(args) > 1 {
		return nil, fmt.Errorf("OrderedDict(%v): unsupported arguments", args)
	}
	for _, it := range items {
		var pair []any
		switch p := it.(type) {
		case *types.List:
			pair = *p
		case *types.Tuple:
			pair = *p
		}
		if len(pair) != 2 {
			return nil, fmt.Errorf("OrderedDict: item %v is not a pair", it)
		}
		d.Set(pair[0], pair[1])
	}
	return d, nil
}
