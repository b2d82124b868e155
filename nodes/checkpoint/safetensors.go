package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// metadataKey is the safetensors header entry holding the string → string metadata.
const metadataKey = "__metadata__"

// maxHeaderSize bounds the JSON header, as the reference implementation does (100 MB).
const maxHeaderSize = 100 << 20

// stEntry is one tensor of a safetensors header.
type stEntry struct {
	name       string
	kind       elemKind
	shape      []int
	begin, end uint64 // byte range within the data section
}

// ReadSafetensors reads a .safetensors file: its tensors by name and its "__metadata__"
// (nil when the file has none).
//
// Supported dtypes: F32, F64, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL keep their type;
// F16 and BF16 are converted to float32. The header is validated before any data is read:
// every tensor's data_offsets must lie inside the data section, match the size of its
// dtype and shape, and not overlap another tensor's. Errors name the file and the tensor.
func ReadSafetensors(path string) (map[string]*tensors.Tensor, map[string]string, error) {
	fail := func(err error) (map[string]*tensors.Tensor, map[string]string, error) {
		return nil, nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	return ReadSafetensorsFrom(f, fi.Size(), path)
}

// ReadSafetensorsFrom is ReadSafetensors on size bytes of r (for weights embedded in a
// binary); name is used in errors.
func ReadSafetensorsFrom(r io.ReaderAt, size int64, name string) (map[string]*tensors.Tensor, map[string]string, error) {
	fail := func(err error) (map[string]*tensors.Tensor, map[string]string, error) {
		return nil, nil, fmt.Errorf("checkpoint: %s: %w", name, err)
	}
	entries, meta, dataStart, err := readSafetensorsHeader(r, size)
	if err != nil {
		return fail(err)
	}
	ts := make(map[string]*tensors.Tensor, len(entries))
	for _, e := range entries {
		buf := make([]byte, e.end-e.begin)
		if _, err := r.ReadAt(buf, dataStart+int64(e.begin)); err != nil {
			return fail(fmt.Errorf("tensor %q: reading data: %w", e.name, err))
		}
		ts[e.name] = toTensor(e.kind, e.shape, buf)
	}
	return ts, meta, nil
}

// readSafetensorsHeader parses and validates the header of a safetensors file of the given
// size. It returns the entries sorted by name, the metadata and the file offset of the data
// section.
func readSafetensorsHeader(r io.ReaderAt, fileSize int64) ([]stEntry, map[string]string, int64, error) {
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, nil, 0, fmt.Errorf("safetensors: reading the header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxHeaderSize {
		return nil, nil, 0, fmt.Errorf("safetensors: header length %d exceeds the %d-byte limit (corrupt file?)", n, maxHeaderSize)
	}
	if int64(n) > fileSize-8 {
		return nil, nil, 0, fmt.Errorf("safetensors: header length %d exceeds the file (%d bytes; truncated?)", n, fileSize)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, nil, 0, fmt.Errorf("safetensors: reading the header: %w", err)
	}
	dataStart := int64(8 + n)
	dataLen := uint64(fileSize - dataStart)
	entries, meta, err := parseSafetensorsHeader(hdr)
	if err != nil {
		return nil, nil, 0, err
	}

	for i := range entries {
		e := &entries[i]
		if e.end > dataLen {
			return nil, nil, 0, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d) run past the end of the data (%d bytes; truncated file?)",
				e.name, e.begin, e.end, dataLen)
		}
	}
	// Non-overlapping: sort the non-empty ranges by start.
	byStart := make([]*stEntry, 0, len(entries))
	for i := range entries {
		if entries[i].end > entries[i].begin {
			byStart = append(byStart, &entries[i])
		}
	}
	sort.Slice(byStart, func(i, j int) bool { return byStart[i].begin < byStart[j].begin })
	for i := 1; i < len(byStart); i++ {
		a, b := byStart[i-1], byStart[i]
		if b.begin < a.end {
			return nil, nil, 0, fmt.Errorf("safetensors: tensors %q [%d, %d) and %q [%d, %d) overlap",
				a.name, a.begin, a.end, b.name, b.begin, b.end)
		}
	}
	return entries, meta, dataStart, nil
}

// parseSafetensorsHeader decodes the JSON header, checking each entry on its own (dtype,
// shape, offsets consistent with the shape). Entries come back sorted by name.
func parseSafetensorsHeader(hdr []byte) ([]stEntry, map[string]string, error) {
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, nil, errors.New("safetensors: header does not start with '{' (corrupt file?)")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header: %w", err)
	}
	var entries []stEntry
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: header: %w", err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, nil, fmt.Errorf("safetensors: header: duplicate entry %q", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("safetensors: header: entry %q: %w", name, err)
		}
		if name == metadataKey {
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, fmt.Errorf("safetensors: header: %s must map strings to strings: %w", metadataKey, err)
			}
			continue
		}
		e, err := parseEntry(name, raw)
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, nil, fmt.Errorf("safetensors: header: %w", err)
	}
	if rest := bytes.TrimRight(hdr[dec.InputOffset():], " \t\r\n"); len(rest) != 0 {
		return nil, nil, fmt.Errorf("safetensors: header: unexpected bytes after the JSON object")
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, meta, nil
}

func parseEntry(name string, raw json.RawMessage) (stEntry, error) {
	var info struct {
		DType   *string   `json:"dtype"`
		Shape   *[]int    `json:"shape"`
		Offsets *[]uint64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return stEntry{}, fmt.Errorf("bad header entry: %w", err)
	}
	if info.DType == nil || info.Shape == nil || info.Offsets == nil {
		return stEntry{}, errors.New("header entry needs dtype, shape and data_offsets")
	}
	e := stEntry{name: name, kind: kindOfSafetensors(*info.DType), shape: *info.Shape}
	if e.kind == kindInvalid {
		return e, fmt.Errorf("unsupported dtype %q", *info.DType)
	}
	if len(*info.Offsets) != 2 {
		return e, fmt.Errorf("data_offsets must be [begin, end], got %v", *info.Offsets)
	}
	e.begin, e.end = (*info.Offsets)[0], (*info.Offsets)[1]
	if e.begin > e.end {
		return e, fmt.Errorf("data_offsets [%d, %d) are reversed", e.begin, e.end)
	}
	elems, err := numElements(e.shape, maxElements)
	if err != nil {
		return e, err
	}
	if want := uint64(elems) * uint64(e.kind.size()); e.end-e.begin != want {
		return e, fmt.Errorf("data_offsets [%d, %d) span %d bytes, but %s%v needs %d",
			e.begin, e.end, e.end-e.begin, e.kind, e.shape, want)
	}
	return e, nil
}

// WriteSafetensors writes the tensors, sorted by name, and the metadata (may be nil) to a
// .safetensors file. float32, float64, float16 (F16), bfloat16 (BF16), int64/32/16/8,
// uint64/32/16/8 and bool tensors are supported. The header is padded with spaces to a
// multiple of 8 bytes, so the data section starts 8-byte aligned.
//
// The file is written to a temporary file in the same directory and renamed over path, so
// readers never see a partial file and a failed write leaves no temporary file behind.
func WriteSafetensors(path string, ts map[string]*tensors.Tensor, metadata map[string]string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("checkpoint: %s: %w", path, err)
		}
	}()
	names := make([]string, 0, len(ts))
	for name, t := range ts {
		if name == metadataKey {
			return fmt.Errorf("tensor name %q is reserved", name)
		}
		if t == nil {
			return fmt.Errorf("tensor %q is nil", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)

	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return err
		}
		hdr.WriteString(strconv.Quote(metadataKey) + ":")
		hdr.Write(m)
	}
	kinds := make([]elemKind, len(names))
	var offset uint64
	for i, name := range names {
		t := ts[name]
		k := kindOfDType(t.DType())
		if k == kindInvalid {
			return fmt.Errorf("tensor %q: dtype %s is not supported by safetensors writing", name, t.DType())
		}
		kinds[i] = k
		if hdr.Len() > 1 {
			hdr.WriteByte(',')
		}
		qname, err := json.Marshal(name)
		if err != nil {
			return err
		}
		dims := t.Shape().Dimensions
		if dims == nil {
			dims = []int{}
		}
		shape, _ := json.Marshal(dims)
		size := uint64(t.Shape().Size()) * uint64(k.size())
		fmt.Fprintf(&hdr, `%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, qname, k, shape, offset, offset+size)
		offset += size
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}

	return atomicfile.WriteWith(path, 0o644, func(w io.Writer) error {
		var lenBuf [8]byte
		binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
		if _, err := w.Write(lenBuf[:]); err != nil {
			return err
		}
		if _, err := w.Write(hdr.Bytes()); err != nil {
			return err
		}
		for i, name := range names {
			data, err := tensorBytes(ts[name], kinds[i])
			if err != nil {
				return fmt.Errorf("tensor %q: %w", name, err)
			}
			if _, err := w.Write(data); err != nil {
				return err
			}
		}
		return nil
	})
}
