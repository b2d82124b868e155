package npy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/internal/fuzzguard"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// FuzzRead: any bytes read as a .npy file give a tensor or an error naming the file, never
// a panic; a tensor returned accounts for exactly the data bytes after the header, so no
// element is invented or dropped.
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	for i, v := range []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 1, 2, 3),
		tensors.FromFlatDataAndDimensions([]int64{5, 6, 7}, 3),
		tensors.FromValue(1.5),
	} {
		path := filepath.Join(dir, "seed"+string(rune('a'+i))+".npy")
		if err := Write(path, v); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(npyFile("{'descr': '>i4', 'fortran_order': False, 'shape': (2L,), }", []byte{0, 0, 0, 7, 0, 0, 0, 8}))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Hang()()
		path := filepath.Join(dir, "f.npy") // one file per worker: executions are sequential
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Read(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if n := got.Shape().Memory(); n == 0 || int(n) >= len(b) {
			t.Fatalf("tensor %s of %d bytes from a %d-byte file", got.Shape(), n, len(b))
		}
		// Every data byte is used: the tensor's bytes are the file's tail, as they are
		// (little-endian) or with each element's bytes reversed (big-endian).
		size := int(got.DType().Size())
		got.ConstBytes(func(data []byte) {
			tail := b[len(b)-len(data):]
			if bytes.Equal(data, tail) {
				return
			}
			for i := 0; i < len(data); i += size {
				for j := range size {
					if data[i+j] != tail[i+size-1-j] {
						t.Fatalf("tensor byte %d is not the file's tail, in either byte order", i+j)
					}
				}
			}
		})
	})
}
