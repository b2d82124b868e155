package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rewriteZip copies a fixture archive, letting edit replace (or, returning nil, drop) the
// content of each record.
func rewriteZip(t *testing.T, fixture string, edit func(name string, data []byte) []byte) string {
	t.Helper()
	zr, err := zip.OpenReader(filepath.Join(fixtureDir, fixture))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if data = edit(f.Name, data); data == nil {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "edited.pt")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadPyTorchErrors(t *testing.T) {
	dir := t.TempDir()
	fixture := readFixture(t, "ema.pt")
	write := tempWriter(t)
	keep := func(_ string, d []byte) []byte { return d }
	cases := []struct {
		name  string
		path  string
		wants []string
	}{
		{"truncated zip", write("trunc.pt", fixture[:len(fixture)/2]), []string{"not a PyTorch zip"}},
		{"legacy magic only", write("legacy.pt", append(slices.Clone(legacyTorchMagic), 0x2e)),
			[]string{"legacy torch.save file", "magic number"}},
		{"missing file", filepath.Join(dir, "nope.pt"), []string{"no such file"}},
		// ema.pt stores weight in archive/data/0 and bias in archive/data/1.
		{"short storage", rewriteZip(t, "ema.pt", func(n string, d []byte) []byte {
			if n == "archive/data/1" {
				return d[:len(d)-1]
			}
			return d
		}), []string{`tensor "bias"`, "holds 7 bytes"}},
		{"missing storage", rewriteZip(t, "ema.pt", func(n string, d []byte) []byte {
			if n == "archive/data/0" {
				return nil
			}
			return d
		}), []string{`tensor "weight"`, "missing"}},
		{"no data.pkl", rewriteZip(t, "ema.pt", func(n string, d []byte) []byte {
			if strings.HasSuffix(n, "data.pkl") {
				return nil
			}
			return d
		}), []string{"no data.pkl"}},
		{"corrupt pickle", rewriteZip(t, "ema.pt", func(n string, d []byte) []byte {
			if strings.HasSuffix(n, "data.pkl") {
				return d[:len(d)/2]
			}
			return d
		}), []string{"data.pkl"}},
		{"plain rewrite", rewriteZip(t, "ema.pt", keep), nil}, // sanity: a plain rewrite reads fine
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadPyTorch(c.path)
			if c.wants == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range append([]string{c.path}, c.wants...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A truncated or corrupted legacy file is an error naming the file, never a panic or a
// partial result.
func TestReadLegacyErrors(t *testing.T) {
	fixture := readFixture(t, "legacy_mixed.pt")
	write := tempWriter(t)
	// Cut every 3 bytes in the first 600 (the pickles) and every 23 after (storages).
	for n := len(legacyTorchMagic); n < len(fixture); n++ {
		if n%3 != 0 || n > 600 && n%23 != 0 {
			if n != len(fixture)-1 {
				continue
			}
		}
		path := write("cut.pt", fixture[:n])
		ts, err := Read(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("cut at %d of %d bytes: %d tensors, error %v", n, len(fixture), len(ts), err)
		}
		if n%299 == 0 || n == len(fixture)-1 {
			t.Logf("cut at %d: %v", n, err)
		}
		if n == len(fixture)-1 && !strings.Contains(err.Error(), "unexpected EOF") {
			t.Errorf("cut before the last byte: error %q does not say unexpected EOF", err)
		}
	}
	// Garbage after the header pickles, and random bytes after the magic number.
	i := bytes.Index(fixture, []byte("type_sizes"))
	if i < 0 {
		t.Fatal("no system info in legacy_mixed.pt")
	}
	garbage := append(slices.Clone(fixture[:i+60]), bytes.Repeat([]byte{0xff, 0x00, 0x41}, 50)...)
	for name, b := range map[string][]byte{
		"garbage.pt": garbage,
		"random.pt":  append(slices.Clone(legacyTorchMagic), []byte("\x00\x17 not a pickle at all \x80\x02")...),
	} {
		path := write(name, b)
		if _, err := ReadPyTorch(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "legacy") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	// A storage count that disagrees with the pickle.
	py2 := readFixture(t, "legacy_py2.pt")
	counts, _ := py2Storages(t, py2)
	bad := slices.Clone(py2)
	n := binary.LittleEndian.Uint64(bad[counts[1]:])
	binary.LittleEndian.PutUint64(bad[counts[1]:], n+1)
	path := write("count.pt", bad)
	want := fmt.Sprintf("%d elements in the data, %d in the pickle", n+1, n)
	if _, err := ReadPyTorch(path); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Errorf("wrong count: error %v, want it to say %q", err, want)
	}
}

// py2Storages locates the two storages at the end of legacy_py2.pt (an nn.Linear(4, 3)
// state dict: 12 and 3 float32 elements, in the order of their keys, which are memory
// addresses): the offsets of their int64 element counts and of their data.
func py2Storages(t *testing.T, b []byte) (counts, data [2]int) {
	t.Helper()
	p := len(b) - 2*8 - 15*4
	for i := range 2 {
		n := binary.LittleEndian.Uint64(b[p:])
		if n != 12 && n != 3 {
			t.Fatalf("legacy_py2.pt: storage count %d at byte %d, want 12 or 3", n, p)
		}
		counts[i], data[i] = p, p+8
		p += 8 + 4*int(n)
	}
	return counts, data
}

// A legacy file saved on a big-endian machine (system info little_endian=False; counts
// and elements big-endian) reads to the same values.
func TestReadLegacyBigEndian(t *testing.T) {
	little := readFixture(t, "legacy_py2.pt")
	want, err := ReadPyTorch(filepath.Join(fixtureDir, "legacy_py2.pt"))
	if err != nil {
		t.Fatal(err)
	}
	b := slices.Clone(little)
	// The system info pickle holds X <len> "little_endian" BINPUT <n> NEWTRUE.
	key := []byte("little_endian")
	i := bytes.Index(b, key) + len(key) + 2
	if i < len(key)+2 || b[i-2] != 'q' || b[i] != 0x88 {
		t.Fatal("legacy_py2.pt: no little_endian=True in the system info")
	}
	b[i] = 0x89 // NEWFALSE
	counts, data := py2Storages(t, b)
	for k := range 2 {
		n := int(binary.LittleEndian.Uint64(b[counts[k]:]))
		swapBytes(b[counts[k]:counts[k]+8], 8)
		swapBytes(b[data[k]:data[k]+4*n], 4)
	}
	got, err := ReadPyTorch(tempWriter(t)("big.pt", b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for name, w := range want {
		if g := got[name]; g == nil || !g.Equal(w) {
			t.Errorf("%s: %v, want %v", name, g, w)
		}
	}
}

func TestReadPyTorchEntryErrors(t *testing.T) {
	path := filepath.Join(fixtureDir, "nested.pt")
	for entry, want := range map[string]string{
		"optimizer": `entry "optimizer" holds no tensors`,
		"epoch":     `entry "epoch" is an int, not a dict`,
		"nope":      `no entry "nope"; top-level keys: epoch, step, state_dict`,
	} {
		_, err := ReadPyTorchEntry(path, entry)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("entry %q: error %v, want it to mention %q", entry, err, want)
		}
	}
}

// A big-endian archive (byteorder record "big", as PyTorch ≥ 2.1 writes on such hosts) is
// byte-swapped on read.
func TestReadPyTorchBigEndian(t *testing.T) {
	little, err := ReadPyTorch(filepath.Join(fixtureDir, "ema.pt"))
	if err != nil {
		t.Fatal(err)
	}
	path := rewriteZip(t, "ema.pt", func(n string, d []byte) []byte {
		if strings.HasPrefix(n, "archive/data/") {
			d = slices.Clone(d)
			swapBytes(d, 4)
		}
		return d
	})
	// Append the byteorder record.
	zr, _ := zip.OpenReader(path)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		zw.Copy(f)
	}
	zr.Close()
	w, _ := zw.Create("archive/byteorder")
	w.Write([]byte("big"))
	zw.Close()
	os.WriteFile(path, buf.Bytes(), 0o644)

	big, err := ReadPyTorch(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range little {
		if !big[name].Equal(want) {
			t.Errorf("%s: %v, want %v", name, big[name], want)
		}
	}
}

func TestStridedSpan(t *testing.T) {
	for _, c := range []struct {
		dims, strides []int
		offset, numel int
		contiguous    bool
		err           string
	}{
		{[]int{2, 3}, []int{3, 1}, 0, 6, true, ""},
		{[]int{2, 3}, []int{3, 1}, 1, 6, false, "exceeds"},
		{[]int{3, 2}, []int{1, 3}, 0, 6, false, ""},
		{[]int{3, 4}, []int{1, 0}, 0, 3, false, ""},
		{[]int{1, 4}, []int{99, 1}, 2, 6, true, ""},
		{[]int{}, []int{}, 5, 6, true, ""},
		{[]int{}, []int{}, 6, 6, false, "past the end"},
		{[]int{0, 3}, []int{3, 1}, 100, 0, true, ""},
		{[]int{2}, []int{-1}, 1, 6, false, "negative stride"},
		{[]int{2}, []int{1, 1}, 0, 6, false, "strides"},
		{[]int{2}, []int{1}, -1, 6, false, "negative storage offset"},
		{[]int{2, 2}, []int{1 << 62, 1}, 0, 6, false, "exceeds"},
		{[]int{-2}, []int{1}, 0, 6, false, "negative dimension"},
	} {
		contiguous, err := stridedSpan(c.dims, c.strides, c.offset, c.numel)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: error %v, want %q", c, err, c.err)
			}
			continue
		}
		if err != nil || contiguous != c.contiguous {
			t.Errorf("%+v: contiguous=%v err=%v", c, contiguous, err)
		}
	}
}

// gather agrees with a direct evaluation of offset + Σ index·stride.
func TestGather(t *testing.T) {
	raw := make([]byte, 64)
	for i := range raw {
		raw[i] = byte(i)
	}
	dims, strides, offset := []int{2, 3, 2}, []int{1, 4, 13}, 3 // 16-bit elements
	got := gather(raw, 2, dims, strides, offset, 12)
	var want []byte
	for i := range 2 {
		for j := range 3 {
			for k := range 2 {
				e := offset + i*strides[0] + j*strides[1] + k*strides[2]
				want = append(want, raw[2*e], raw[2*e+1])
			}
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("gather\n got  %v\n want %v", got, want)
	}
}
