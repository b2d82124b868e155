package checkpoint

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/internal/fuzzguard"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// addFixtures seeds f with the checkpoint fixtures whose names match glob.
func addFixtures(f *testing.F, glob string) {
	paths, err := filepath.Glob(filepath.Join(fixtureDir, glob))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures %s: %v", glob, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkTensors: whatever a reader returns has no nil tensor. (That the byte counts are
// bounded by the file is checked by the reader itself before it allocates: picklescan.go
// and the storage-size checks.)
func checkTensors(t *testing.T, ts map[string]*tensors.Tensor) {
	for name, v := range ts {
		if v == nil {
			t.Fatalf("tensor %q is nil", name)
		}
	}
}

// FuzzReadPyTorch: any bytes read as a checkpoint (zip or legacy torch.save, told apart by
// Read) give tensors or an error naming the file, never a panic or an allocation the
// file cannot back.
func FuzzReadPyTorch(f *testing.F) {
	addFixtures(f, "*.pt")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Hang()()
		path := filepath.Join(dir, "f.pt") // one file per worker: executions are sequential
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		ts, err := Read(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		checkTensors(t, ts)
	})
}

// FuzzReadSafetensors: any bytes read as safetensors give tensors whose data all lies in
// the file, or an error naming it.
func FuzzReadSafetensors(f *testing.F) {
	addFixtures(f, "*.safetensors")
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Add([]byte("\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}    \x00\x00\x80\x3f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Hang()()
		ts, _, err := ReadSafetensorsFrom(bytes.NewReader(b), int64(len(b)), "f.safetensors")
		if err != nil {
			if !strings.Contains(err.Error(), "f.safetensors") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		checkTensors(t, ts)
		total := 0
		for _, v := range ts {
			total += int(v.Shape().Memory())
		}
		if total > len(b) {
			t.Fatalf("%d tensor bytes from a %d-byte file", total, len(b))
		}
	})
}

// A pickle length field claiming gigabytes in a tiny file (legacy or zip) is an error
// naming the file, found without allocating the claim (the fuzzer's first crash: gopickle
// allocates a BINUNICODE's length before reading it).
func TestHugePickleLengthsAreRefused(t *testing.T) {
	claim := []byte("}X\xff\xff\xff\x7f") // a dict, then a 2 GiB string
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, err := zw.Create("archive/data.pkl")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(append([]byte("\x80\x02"), claim...))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string][]byte{
		"legacy.pt": append(append([]byte{}, legacyTorchMagic...), append([]byte("P\x19.\x80\x02"), claim...)...),
		"zip.pt":    zipped.Bytes(),
	} {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Read(path)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "2147483647 bytes claimed") {
			t.Fatalf("%s: error %v, want the path and the 2 GiB claim", name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 16<<20 {
			t.Fatalf("%s: allocated %d MB", name, d>>20)
		}
	}
}

// A zip record whose header claims more bytes than the archive holds (stored) or than
// deflate can expand to is refused before its buffer is allocated.
func TestHugeZipRecordsAreRefused(t *testing.T) {
	for name, h := range map[string]*zip.FileHeader{
		"stored":   {Name: "archive/data.pkl", Method: zip.Store, CompressedSize64: 1 << 29, UncompressedSize64: 1 << 29},
		"deflated": {Name: "archive/data.pkl", Method: zip.Deflate, CompressedSize64: 10, UncompressedSize64: 1 << 29},
	} {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("\x80\x02}."))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name+".pt")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = Read(path)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "declared") {
			t.Fatalf("%s: error %v, want the path and the declared size", name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 16<<20 {
			t.Fatalf("%s: allocated %d MB", name, d>>20)
		}
	}
}
