package checkpoint

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"os"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// StateDictKeys are the top-level entries ReadPyTorch looks in, in this order, when a
// checkpoint nests its state dict in a bigger dict (training checkpoints such as
// {"epoch": 7, "state_dict": {...}, "optimizer": {...}}). The first one holding a dict with
// tensors wins; use ReadPyTorchEntry to pick another (for example "ema" when "model" is
// present too).
var StateDictKeys = []string{"state_dict", "model", "ema", "params"}

// dataParallelPrefix is stripped from every tensor name (nn.DataParallel / DDP checkpoints).
const dataParallelPrefix = "module."

// ReadPyTorch reads the tensors of a PyTorch torch.save checkpoint and returns them by
// name. Both of torch.save's formats are read: the zip archive written by PyTorch ≥ 1.6 and
// the legacy stream (pickles followed by the raw storages) of older versions and of
// torch.save(..., _use_new_zipfile_serialization=False), in which torchvision's and
// pytorch-fid's published weights are stored (see legacy.go).
//
// The file's top-level object may be a state dict (dict or OrderedDict of tensors) or a
// dict that nests one under one of StateDictKeys (searched in that order, recursively up
// to a few levels). A leading "module." is stripped from every name. Entries that are not
// tensors (integers, strings, optimizer state under other keys, …) are skipped.
//
// float32, float64 and integer/bool tensors keep their dtype; float16 and bfloat16 tensors
// are converted to float32. Views (transposed, sliced, expanded tensors: any storage
// offset and strides) are materialised in row-major order, and tensors sharing a storage
// each get their own copy.
//
// The pickle is decoded without running any code: Python classes other than the few
// torch tensor/storage rebuild functions (and, in legacy files, OrderedDict) become inert
// placeholders.
func ReadPyTorch(path string) (map[string]*tensors.Tensor, error) {
	return ReadPyTorchEntry(path, "")
}

// ReadPyTorchEntry is ReadPyTorch with the state dict taken from the given top-level entry
// of the checkpoint dict (e.g. "ema"). An empty entry means the automatic choice of
// ReadPyTorch.
func ReadPyTorchEntry(path, entry string) (ts map[string]*tensors.Tensor, err error) {
	fail := func(err error) (map[string]*tensors.Tensor, error) {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return fail(err)
	}
	archiveSize := uint64(info.Size())
	if head, herr := readHead(path, len(legacyTorchMagic)); herr == nil && bytes.Equal(head, legacyTorchMagic) {
		if ts, err = readLegacy(path, entry); err != nil {
			return fail(err)
		}
		return ts, nil
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return fail(fmt.Errorf("not a PyTorch zip checkpoint (nor a legacy torch.save file): %w", err))
	}
	defer zr.Close()

	records := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		records[f.Name] = f
	}
	prefix, ok := archivePrefix(zr.File)
	if !ok {
		return fail(errors.New("no data.pkl in the zip archive (not a torch.save checkpoint?)"))
	}
	bigEndian := false
	if f, ok := records[prefix+"byteorder"]; ok {
		b, err := readRecord(f, 16, archiveSize)
		if err != nil {
			return fail(fmt.Errorf("reading byteorder: %w", err))
		}
		switch string(bytes.TrimSpace(b)) {
		case "little":
		case "big":
			bigEndian = true
		default:
			return fail(fmt.Errorf("unknown byteorder %q", b))
		}
	}

	pkl, err := readRecord(records[prefix+"data.pkl"], 1<<30, archiveSize)
	if err != nil {
		return fail(fmt.Errorf("reading %sdata.pkl: %w", prefix, err))
	}
	obj, err := unpickle(pkl)
	if err != nil {
		return fail(fmt.Errorf("decoding %sdata.pkl: %w", prefix, err))
	}
	named, err := selectStateDict(obj, entry)
	if err != nil {
		return fail(err)
	}

	// Materialise storage by storage, so each storage is read once and then dropped.
	byStorage := groupByStorage(named)
	ts = make(map[string]*tensors.Tensor, len(named))
	for _, k := range slices.Sorted(maps.Keys(byStorage)) {
		views := byStorage[k]
		st := views[0].tensor.storage
		if st.kind == kindInvalid {
			return fail(fmt.Errorf("tensor %q: unsupported storage type %s", views[0].name, st.class))
		}
		rec, ok := records[prefix+"data/"+k]
		if !ok {
			return fail(fmt.Errorf("tensor %q: storage record %q missing from the archive", views[0].name, prefix+"data/"+k))
		}
		if want := st.byteSize(); st.numel < 0 || rec.UncompressedSize64 < want {
			return fail(fmt.Errorf("tensor %q: storage %q holds %d bytes, %d %s elements need %d",
				views[0].name, k, rec.UncompressedSize64, st.numel, st.class, want))
		}
		raw, err := readRecord(rec, rec.UncompressedSize64, archiveSize)
		if err != nil {
			return fail(fmt.Errorf("tensor %q: reading storage %q: %w", views[0].name, k, err))
		}
		if err := materialiseStorage(ts, views, raw, bigEndian); err != nil {
			return fail(err)
		}
	}
	return ts, nil
}

// namedView is a tensor of the state dict under its (prefix-stripped) name.
type namedView struct {
	name   string
	tensor *torchTensor
}

// groupByStorage groups the state dict's tensors by storage key, each group sorted by name.
func groupByStorage(named map[string]*torchTensor) map[string][]namedView {
	by := map[string][]namedView{}
	for _, name := range slices.Sorted(maps.Keys(named)) {
		tt := named[name]
		by[tt.storage.key] = append(by[tt.storage.key], namedView{name, tt})
	}
	return by
}

// byteSize is the storage's size in bytes (numel checked non-negative by the callers).
// It saturates instead of wrapping, so a huge numel fails the size checks.
func (st *torchStorage) byteSize() uint64 {
	n, size := uint64(st.numel), uint64(st.kind.size())
	if size != 0 && n > math.MaxUint64/size {
		return math.MaxUint64
	}
	return n * size
}

// materialiseStorage adds to ts the given views, all of one storage whose bytes (in the
// file's byte order; at least numel elements) are raw, each as its own contiguous tensor.
// Both file formats use it once they have a storage's bytes; raw may be modified.
func materialiseStorage(ts map[string]*tensors.Tensor, views []namedView, raw []byte, bigEndian bool) error {
	st := views[0].tensor.storage
	if st.kind == kindInvalid {
		return fmt.Errorf("tensor %q: unsupported storage type %s", views[0].name, st.class)
	}
	want := st.byteSize()
	if st.numel < 0 || uint64(len(raw)) < want {
		return fmt.Errorf("tensor %q: storage %q holds %d bytes, %d %s elements need %d",
			views[0].name, st.key, len(raw), st.numel, st.class, want)
	}
	raw = raw[:want]
	if bigEndian {
		swapBytes(raw, st.kind.size())
	}
	for _, v := range views {
		t, err := v.tensor.materialise(raw)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", v.name, err)
		}
		ts[v.name] = t
	}
	return nil
}

// maxViewRepeat bounds how many elements a view may have per element of its storage.
const maxViewRepeat = 1024

// materialise returns the view tt of the storage bytes raw as a contiguous tensor.
func (tt *torchTensor) materialise(raw []byte) (*tensors.Tensor, error) {
	size := tt.storage.kind.size()
	contiguous, err := stridedSpan(tt.size, tt.stride, tt.offset, tt.storage.numel)
	if err != nil {
		return nil, err
	}
	n, _ := numElements(tt.size, maxElements) // checked by stridedSpan
	// An overlapping view (an expanded tensor: stride 0) may repeat its storage's
	// elements, but not without bound, or a few bytes of file could ask for terabytes.
	if n > maxViewRepeat*max(tt.storage.numel, 1) {
		return nil, fmt.Errorf("view of %d elements (size %v, stride %v) repeats its storage of %d elements more than %d times",
			n, tt.size, tt.stride, tt.storage.numel, maxViewRepeat)
	}
	var data []byte
	if contiguous {
		data = raw[tt.offset*size : (tt.offset+n)*size]
		if n == 0 {
			data = nil
		}
	} else {
		data = gather(raw, size, tt.size, tt.stride, tt.offset, n)
	}
	return toTensor(tt.storage.kind, tt.size, data), nil
}

// archivePrefix finds "<top folder>/" of the archive's data.pkl (the folder is the file
// stem when torch.save got a path, "archive" when it got a file object).
func archivePrefix(files []*zip.File) (string, bool) {
	for _, f := range files {
		if f.Name == "data.pkl" {
			return "", true
		}
		if dir, ok := strings.CutSuffix(f.Name, "/data.pkl"); ok && !strings.Contains(dir, "/") {
			return dir + "/", true
		}
	}
	return "", false
}

// readRecord reads a whole zip record (checking its CRC), refusing records over limit bytes
// and records whose declared sizes the archive (of archiveSize bytes) cannot hold.
func readRecord(f *zip.File, limit, archiveSize uint64) ([]byte, error) {
	if f.UncompressedSize64 > limit {
		return nil, fmt.Errorf("record %s is too large (%d bytes)", f.Name, f.UncompressedSize64)
	}
	// The sizes are the file's word, and the buffer is allocated from them: a record's
	// compressed bytes must fit in the archive, a stored record is as large as they are,
	// and a deflated one at most deflate's ~1032:1 ratio larger, so a small archive cannot
	// make us allocate gigabytes.
	switch {
	case f.CompressedSize64 > archiveSize:
		return nil, fmt.Errorf("record %s: %d compressed bytes declared in a %d-byte archive (truncated or corrupt)", f.Name, f.CompressedSize64, archiveSize)
	case f.Method == zip.Store && f.UncompressedSize64 != f.CompressedSize64,
		f.UncompressedSize64/1032 > f.CompressedSize64:
		return nil, fmt.Errorf("record %s: %d bytes declared from %d compressed bytes (corrupt archive)", f.Name, f.UncompressedSize64, f.CompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, f.UncompressedSize64)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, err
	}
	// Reading to EOF makes archive/zip verify the CRC-32.
	if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = errors.New("record longer than declared")
		}
		return nil, err
	}
	return buf, nil
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	n, err = io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return b[:n], err
}

// swapBytes reverses the bytes of each element of the given size, in place.
func swapBytes(b []byte, size int) {
	for i := 0; i+size <= len(b); i += size {
		for l, r := i, i+size-1; l < r; l, r = l+1, r-1 {
			b[l], b[r] = b[r], b[l]
		}
	}
}

// --- Pickle decoding --------------------------------------------------------------------

// torchStorage is a storage referenced by a persistent id ("storage", class, key, location,
// numel[, view]): its bytes are the archive record data/<key> (zip format) or follow the
// pickles (legacy format).
type torchStorage struct {
	kind  elemKind // kindInvalid when the storage class is not supported
	class string
	key   string
	numel int
}

// torchTensor is a tensor rebuilt by torch._utils._rebuild_tensor_v2 (or _rebuild_tensor):
// a strided view of a storage (offset, size and stride in elements).
type torchTensor struct {
	storage      *torchStorage
	offset       int
	size, stride []int
}

// storageClass stands for torch.FloatStorage and friends.
type storageClass struct {
	name string
	kind elemKind
}

var storageKinds = map[string]elemKind{
	"FloatStorage":    kindF32,
	"DoubleStorage":   kindF64,
	"HalfStorage":     kindF16,
	"BFloat16Storage": kindBF16,
	"LongStorage":     kindI64,
	"IntStorage":      kindI32,
	"ShortStorage":    kindI16,
	"CharStorage":     kindI8,
	"ByteStorage":     kindU8,
	"BoolStorage":     kindBool,
}

// opaqueClass is any Python class or function we do not model: calling or instantiating
// it yields an inert opaqueObject, so non-tensor entries decode without running code.
type opaqueClass struct{ name string }

type opaqueObject struct{ class string }

func (c *opaqueClass) Call(args ...any) (any, error)  { return &opaqueObject{c.name}, nil }
func (c *opaqueClass) PyNew(args ...any) (any, error) { return &opaqueObject{c.name}, nil }
func (o *opaqueObject) PySetState(any) error          { return nil }
func (o *opaqueObject) PyDictSet(k, v any) error      { return nil }

// callFunc adapts a Go function to a pickle callable.
type callFunc func(args ...any) (any, error)

func (f callFunc) Call(args ...any) (any, error) { return f(args...) }

// rebuildTensorV2 implements torch._utils._rebuild_tensor_v2(storage, storage_offset,
// size, stride, requires_grad, backward_hooks[, metadata]), and _rebuild_tensor(storage,
// storage_offset, size, stride) of PyTorch < 0.4 (legacy files), its first four arguments.
func rebuildTensorV2(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments", len(args))
	}
	st, ok := args[0].(*torchStorage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage is a %T", args[0])
	}
	offset, ok1 := asInt(args[1])
	size, ok2 := asInts(args[2])
	stride, ok3 := asInts(args[3])
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: bad offset/size/stride %v %v %v", args[1], args[2], args[3])
	}
	return &torchTensor{storage: st, offset: offset, size: size, stride: stride}, nil
}

// rebuildParameter implements torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks) and _rebuild_parameter_with_state: a Parameter is its data tensor.
func rebuildParameter(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("_rebuild_parameter: no arguments")
	}
	return args[0], nil
}

// rebuildFromTypeV2 implements torch._tensor._rebuild_from_type_v2(func, type, args,
// state), used for tensor subclasses: the tensor is func(*args).
func rebuildFromTypeV2(args ...any) (any, error) {
	if len(args) < 3 {
		return nil, fmt.Errorf("_rebuild_from_type_v2: %d arguments", len(args))
	}
	fn, ok := args[0].(types.Callable)
	fargs, ok2 := args[2].(*types.Tuple)
	if !ok || !ok2 {
		return &opaqueObject{"torch._tensor._rebuild_from_type_v2"}, nil
	}
	return fn.Call(*fargs...)
}

func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		return callFunc(rebuildTensorV2), nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return callFunc(rebuildParameter), nil
	case "torch._tensor._rebuild_from_type_v2":
		return callFunc(rebuildFromTypeV2), nil
	}
	if module == "torch" {
		if k, ok := storageKinds[name]; ok {
			return &storageClass{name: name, kind: k}, nil
		}
	}
	return &opaqueClass{module + "." + name}, nil
}

// unpickle decodes data.pkl. Storages are only described here; their bytes are read later
// for the tensors actually returned.
func unpickle(pkl []byte) (obj any, err error) {
	defer func() {
		if r := recover(); r != nil {
			obj, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	if pkl, err = readPickle(bufio.NewReader(bytes.NewReader(pkl)), int64(len(pkl))); err != nil {
		return nil, err
	}
	return newUnpickler(bytes.NewReader(pkl), findClass, map[string]*torchStorage{}).Load()
}

// newUnpickler decodes one pickle from r, resolving globals with find and recording the
// storages its persistent ids describe in storages (one *torchStorage per key, so that
// tensors sharing a storage point to the same one). r should be an io.ByteReader (a
// bytes.Reader, a bufio.Reader) so that nothing past the pickle's STOP is consumed.
func newUnpickler(r io.Reader, find func(module, name string) (any, error), storages map[string]*torchStorage) *pickle.Unpickler {
	u := pickle.NewUnpickler(r)
	u.FindClass = find
	u.PersistentLoad = func(pid any) (any, error) {
		tup, ok := pid.(*types.Tuple)
		if !ok || tup.Len() < 5 {
			return nil, fmt.Errorf("unexpected persistent id %v", pid)
		}
		if s, _ := tup.Get(0).(string); s != "storage" {
			return nil, fmt.Errorf("unexpected persistent id type %v", tup.Get(0))
		}
		key, ok1 := tup.Get(2).(string)
		numel, ok2 := asInt(tup.Get(4))
		if !ok1 || !ok2 || numel < 0 || numel > maxElements {
			return nil, fmt.Errorf("unexpected storage persistent id %v", pid)
		}
		if tup.Len() > 5 && tup.Get(5) != nil {
			// A view of a bigger storage: only PyTorch < 0.4 wrote those (never for a state dict).
			return nil, fmt.Errorf("storage %s: storage views (PyTorch < 0.4) are not supported", key)
		}
		if st, ok := storages[key]; ok {
			return st, nil
		}
		st := &torchStorage{key: key, numel: numel}
		switch c := tup.Get(1).(type) {
		case *storageClass:
			st.kind, st.class = c.kind, c.name
		case *opaqueClass:
			st.class = c.name
		default:
			st.class = fmt.Sprintf("%T", c)
		}
		storages[key] = st
		return st, nil
	}
	return &u
}

func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case *big.Int:
		if x.IsInt64() {
			return int(x.Int64()), true
		}
	}
	return 0, false
}

func asInts(v any) ([]int, bool) {
	tup, ok := v.(*types.Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int, tup.Len())
	for i := range out {
		if out[i], ok = asInt(tup.Get(i)); !ok {
			return nil, false
		}
	}
	return out, true
}

// --- Choosing the state dict ------------------------------------------------------------

type dictItem struct {
	key   any
	value any
}

// dictItems lists a Python dict or OrderedDict in order; ok is false for anything else.
func dictItems(v any) (items []dictItem, ok bool) {
	switch d := v.(type) {
	case *types.Dict:
		for _, e := range *d {
			items = append(items, dictItem{e.Key, e.Value})
		}
		return items, true
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			items = append(items, dictItem{entry.Key, entry.Value})
		}
		return items, true
	}
	return nil, false
}

// tensorsOf returns the string-keyed tensor entries of a dict, "module." stripped.
func tensorsOf(items []dictItem) (map[string]*torchTensor, error) {
	out := map[string]*torchTensor{}
	for _, it := range items {
		name, ok := it.key.(string)
		tt, ok2 := it.value.(*torchTensor)
		if !ok || !ok2 {
			continue
		}
		name = strings.TrimPrefix(name, dataParallelPrefix)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("tensor %q appears both with and without the %q prefix", name, dataParallelPrefix)
		}
		out[name] = tt
	}
	return out, nil
}

// findStateDict looks for the state dict in a dict: under StateDictKeys first (recursively),
// then the dict's own tensor entries.
func findStateDict(items []dictItem, depth int) (map[string]*torchTensor, error) {
	if depth < 4 {
		for _, key := range StateDictKeys {
			for _, it := range items {
				if k, _ := it.key.(string); k != key {
					continue
				}
				if sub, ok := dictItems(it.value); ok {
					found, err := findStateDict(sub, depth+1)
					if err != nil || len(found) > 0 {
						return found, err
					}
				}
			}
		}
	}
	return tensorsOf(items)
}

func selectStateDict(obj any, entry string) (map[string]*torchTensor, error) {
	items, ok := dictItems(obj)
	if !ok {
		return nil, fmt.Errorf("top-level object is %s, not a dict of tensors (a pickled nn.Module? save its state_dict())", pyTypeName(obj))
	}
	if entry != "" {
		for _, it := range items {
			if k, _ := it.key.(string); k == entry {
				sub, ok := dictItems(it.value)
				if !ok {
					return nil, fmt.Errorf("entry %q is %s, not a dict", entry, pyTypeName(it.value))
				}
				found, err := tensorsOf(sub)
				if err == nil && len(found) == 0 {
					err = fmt.Errorf("entry %q holds no tensors", entry)
				}
				return found, err
			}
		}
		return nil, fmt.Errorf("no entry %q; top-level keys: %s", entry, keyList(items))
	}
	found, err := findStateDict(items, 0)
	if err == nil && len(found) == 0 {
		err = fmt.Errorf("no tensors found; top-level keys: %s", keyList(items))
	}
	return found, err
}

func keyList(items []dictItem) string {
	var keys []string
	for _, it := range items {
		keys = append(keys, fmt.Sprintf("%v", it.key))
	}
	if len(keys) > 20 {
		keys = append(keys[:20], "…")
	}
	return strings.Join(keys, ", ")
}

func pyTypeName(v any) string {
	switch x := v.(type) {
	case *opaqueObject:
		return "a " + x.class
	case *torchTensor:
		return "a tensor"
	case *types.List:
		return "a list"
	case *types.Tuple:
		return "a tuple"
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case int, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a str"
	case bool:
		return "a bool"
	case nil:
		return "None"
	}
	return fmt.Sprintf("a %T", v)
}
