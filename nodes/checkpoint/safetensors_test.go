package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/x448/float16"
)

// TestSafetensorsRoundTrip writes one tensor of every supported dtype (plus a scalar and an
// empty tensor) with metadata and reads them back.
func TestSafetensorsRoundTrip(t *testing.T) {
	f32 := []float32{1.5, -2.25, 0, 3e-39, 1e30, -7}
	half := make([]float16.Float16, len(f32))
	bf := make([]bfloat16.BFloat16, len(f32))
	halfWide := make([]float32, len(f32))
	bfWide := make([]float32, len(f32))
	for i, v := range f32 {
		half[i] = float16.Fromfloat32(v)
		halfWide[i] = half[i].Float32()
		bf[i] = bfloat16.FromFloat32(v)
		bfWide[i] = bf[i].Float32()
	}
	in := map[string]*tensors.Tensor{
		"f32":                      tensors.FromFlatDataAndDimensions(f32, 2, 3),
		"f64":                      tensors.FromFlatDataAndDimensions([]float64{1e-300, -2, 3.25, 4}, 4, 1),
		"f16":                      tensors.FromFlatDataAndDimensions(half, 3, 2),
		"bf16":                     tensors.FromFlatDataAndDimensions(bf, 6),
		"i32":                      tensors.FromFlatDataAndDimensions([]int32{-1 << 31, 0, 1<<31 - 1}, 3),
		"i64":                      tensors.FromFlatDataAndDimensions([]int64{-1 << 63, 42, 1<<63 - 1, 7}, 2, 2),
		"i16":                      tensors.FromFlatDataAndDimensions([]int16{-300, 300}, 2),
		"i8":                       tensors.FromFlatDataAndDimensions([]int8{-128, 127, 0}, 3),
		"u8":                       tensors.FromFlatDataAndDimensions([]uint8{0, 255}, 1, 2),
		"u16":                      tensors.FromFlatDataAndDimensions([]uint16{65535}, 1),
		"u32":                      tensors.FromFlatDataAndDimensions([]uint32{1 << 31}, 1),
		"u64":                      tensors.FromFlatDataAndDimensions([]uint64{1 << 63}, 1),
		"bool":                     tensors.FromFlatDataAndDimensions([]bool{true, false, true}, 3),
		"scalar":                   tensors.FromScalar(float32(-0.5)),
		"empty":                    tensors.FromFlatDataAndDimensions([]float32{}, 0, 4),
		"name with spaces/ünïcode": tensors.FromFlatDataAndDimensions([]int32{9}, 1),
	}
	meta := map[string]string{"format": "pt", "note": "round \"trip\" ✓"}
	path := filepath.Join(t.TempDir(), "all.safetensors")
	if err := WriteSafetensors(path, in, meta); err != nil {
		t.Fatal(err)
	}
	out, gotMeta, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(gotMeta, meta) {
		t.Errorf("metadata %v, want %v", gotMeta, meta)
	}
	if got, want := slices.Sorted(maps.Keys(out)), slices.Sorted(maps.Keys(in)); !slices.Equal(got, want) {
		t.Fatalf("names %q, want %q", got, want)
	}
	// F16 and BF16 come back as float32 holding the same values.
	wantOut := maps.Clone(in)
	wantOut["f16"] = tensors.FromFlatDataAndDimensions(halfWide, 3, 2)
	wantOut["bf16"] = tensors.FromFlatDataAndDimensions(bfWide, 6)
	for name, want := range wantOut {
		got := out[name]
		if !got.Shape().Equal(want.Shape()) {
			t.Errorf("%s: shape %s, want %s", name, got.Shape(), want.Shape())
			continue
		}
		if !got.Equal(want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}

	// Layout: header padded with spaces to a multiple of 8, names sorted, data packed in
	// name order.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	hdr := raw[8 : 8+n]
	if trimmed := bytes.TrimRight(hdr, " "); len(hdr)-len(trimmed) >= 8 || trimmed[len(trimmed)-1] != '}' {
		t.Errorf("header padding wrong: %q", hdr[len(trimmed)-1:])
	}
	entries, _, err := parseSafetensorsHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var end uint64
	for _, e := range entries {
		if e.begin != end {
			t.Errorf("%s starts at %d, want %d (packed in name order)", e.name, e.begin, end)
		}
		end = e.end
	}
	if int(end) != len(raw)-8-int(n) {
		t.Errorf("data section is %d bytes, tensors use %d", len(raw)-8-int(n), end)
	}
	var decoded map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &decoded); err != nil {
		t.Fatalf("header is not plain JSON: %v", err)
	}
	if _, ok := decoded[metadataKey]; !ok {
		t.Error("no __metadata__ in the header")
	}
}

func TestSafetensorsNoMetadata(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteSafetensors(path, map[string]*tensors.Tensor{"a": tensors.FromScalar(int64(3))}, nil); err != nil {
		t.Fatal(err)
	}
	ts, meta, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta != nil {
		t.Errorf("metadata %v, want nil", meta)
	}
	if v := tensors.ToScalar[int64](ts["a"]); v != 3 {
		t.Errorf("a = %d", v)
	}
	// An empty map of tensors is a valid file too.
	if err := WriteSafetensors(path, nil, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if ts, meta, err = ReadSafetensors(path); err != nil || len(ts) != 0 || meta["k"] != "v" {
		t.Errorf("empty file: %v %v %v", ts, meta, err)
	}
}

// stFile assembles a safetensors file from a raw header and data.
func stFile(t *testing.T, header string, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSafetensorsErrors(t *testing.T) {
	// A valid file to corrupt.
	good := filepath.Join(t.TempDir(), "good.safetensors")
	err := WriteSafetensors(good, map[string]*tensors.Tensor{
		"alpha": tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4}, 2, 2),
		"omega": tensors.FromFlatDataAndDimensions([]float64{5, 6}, 2),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	writeBytes := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "corrupt.safetensors")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hugeLen := slices.Clone(goodBytes)
	binary.LittleEndian.PutUint64(hugeLen, 1<<40)
	pastEnd := slices.Clone(goodBytes)
	binary.LittleEndian.PutUint64(pastEnd, uint64(len(goodBytes)))
	badJSON := slices.Clone(goodBytes)
	copy(badJSON[8+5:], "###")

	data := make([]byte, 32)
	cases := []struct {
		name  string
		path  string
		wants []string // substrings of the error, besides the file name
	}{
		{"truncated file", writeBytes(goodBytes[:len(goodBytes)-4]), []string{`tensor "omega"`, "truncated"}},
		{"truncated header", writeBytes(goodBytes[:20]), []string{"header length"}},
		{"too short", writeBytes(goodBytes[:5]), []string{"header length"}},
		{"huge header length", writeBytes(hugeLen), []string{"header length"}},
		{"header length past end", writeBytes(pastEnd), []string{"header length"}},
		{"corrupted header", writeBytes(badJSON), []string{"header"}},
		{"not json", stFile(t, "hello world!", data), []string{"'{'"}},
		{"offsets out of range", stFile(t, `{"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}`, data),
			[]string{`tensor "w"`, "[0, 400)"}},
		{"size mismatch", stFile(t, `{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}`, data),
			[]string{`tensor "w"`, "needs 16"}},
		{"reversed offsets", stFile(t, `{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, data),
			[]string{`tensor "w"`, "reversed"}},
		{"overlap", stFile(t, `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}}`, data),
			[]string{`"a" [0, 8)`, `"b" [4, 12)`, "overlap"}},
		{"unsupported dtype", stFile(t, `{"q":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}`, data),
			[]string{`tensor "q"`, "F8_E4M3"}},
		{"negative dim", stFile(t, `{"q":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, data),
			[]string{`tensor "q"`, "negative"}},
		{"missing field", stFile(t, `{"q":{"dtype":"F32","data_offsets":[0,4]}}`, data),
			[]string{`tensor "q"`, "shape"}},
		{"duplicate", stFile(t, `{"q":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"q":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, data),
			[]string{`duplicate entry "q"`}},
		{"bad metadata", stFile(t, `{"__metadata__":{"k":1}}`, data), []string{"__metadata__"}},
		{"trailing garbage", stFile(t, `{}x`, data), []string{"after the JSON"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ReadSafetensors(c.path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append([]string{c.path}, c.wants...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestReadDispatch(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"text.bin":  "this is neither a zip nor safetensors",
		"empty.bin": "",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Read(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "neither") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	missing := filepath.Join(dir, "missing.pt")
	if _, err := Read(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v", err)
	}
	// A corrupt safetensors file reports its own problem, not "neither".
	bad := stFile(t, `{"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}`, nil)
	if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), `tensor "w"`) {
		t.Errorf("corrupt safetensors: error %v", err)
	}
}

func TestWriteSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.safetensors")
	for name, ts := range map[string]map[string]*tensors.Tensor{
		"unsupported dtype": {"c": tensors.FromFlatDataAndDimensions([]complex64{1}, 1)},
		"nil tensor":        {"n": nil},
		"reserved name":     {metadataKey: tensors.FromScalar(float32(1))},
	} {
		err := WriteSafetensors(path, ts, nil)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v", name, err)
		}
		for tname := range ts {
			if err != nil && !strings.Contains(err.Error(), tname) {
				t.Errorf("%s: error %q does not name %q", name, err, tname)
			}
		}
	}
	assertOnlyFiles(t, dir)
}

// assertOnlyFiles checks that dir holds exactly the named files (no temporary files).
func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("directory holds %q, want %q", got, names)
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	for i := range 3 { // create, then overwrite twice
		ts := map[string]*tensors.Tensor{"w": tensors.FromFlatDataAndDimensions([]float32{float32(i)}, 1)}
		if err := WriteSafetensors(path, ts, nil); err != nil {
			t.Fatal(err)
		}
		got, _, err := ReadSafetensors(path)
		if err != nil {
			t.Fatal(err)
		}
		if v := tensors.MustCopyFlatData[float32](got["w"])[0]; v != float32(i) {
			t.Errorf("write %d: read back %v", i, v)
		}
	}
	assertOnlyFiles(t, dir, "w.safetensors")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}

	// Writing into a missing directory fails cleanly.
	if err := WriteSafetensors(filepath.Join(dir, "no", "such.safetensors"), nil, nil); err == nil {
		t.Error("no error writing into a missing directory")
	}
}

func TestSafetensorsDTypes(t *testing.T) {
	for k := kindF32; k <= kindBool; k++ {
		if kindOfSafetensors(k.String()) != k {
			t.Errorf("%s does not map back to itself", k)
		}
		if w := kindOfDType(kindInfo[k].dtype); k != kindF16 && k != kindBF16 && w != k {
			t.Errorf("%s: written as %s", k, w)
		}
	}
	if kindOfDType(dtypes.Float16) != kindF16 || kindOfDType(dtypes.BFloat16) != kindBF16 {
		t.Error("half types not written as F16/BF16")
	}
}
