package npy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 1, 2, 3),
		tensors.FromFlatDataAndDimensions([]float64{-1.5, 2.25}, 2),
		tensors.FromFlatDataAndDimensions([]int32{7, 8, 9, 10}, 2, 2),
	} {
		path := filepath.Join(dir, "a.npy")
		if err := Write(path, v); err != nil {
			t.Fatal(err)
		}
		got, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Shape().Equal(v.Shape()) || got.String() != v.String() {
			t.Fatalf("round trip: %v, want %v", got, v)
		}
	}
}

// A file written by NumPy reads back with its shape and values.
func TestReadsNumPyFiles(t *testing.T) {
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Fatal("/usr/bin/python3 is needed (Debian's python3-numpy)")
	}
	path := filepath.Join(t.TempDir(), "np.npy")
	script := "import numpy as np; np.save('" + path + "', np.arange(6, dtype=np.float32).reshape(1, 2, 3) / 4)"
	if out, err := exec.Command(py, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want := tensors.FromFlatDataAndDimensions([]float32{0, 0.25, 0.5, 0.75, 1, 1.25}, 1, 2, 3)
	if got.String() != want.String() {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestBadFilesNameThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.npy")
	if err := os.WriteFile(path, []byte("not numpy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v does not name %s", err, path)
	}
}

// NumPy reads what Write writes, with shape and values.
func TestNumPyReadsOurFiles(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]*tensors.Tensor{
		"a.npy": tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 1, 2, 3),
		"b.npy": tensors.FromFlatDataAndDimensions([]int64{5, 6, 7}, 3),
	}
	for name, v := range cases {
		path := filepath.Join(dir, name)
		if err := Write(path, v); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("/usr/bin/python3", "-c", "import numpy as np; a = np.load('"+path+"'); print(a.dtype, a.shape, a.ravel().tolist())").CombinedOutput()
		if err != nil {
			t.Fatalf("numpy: %v\n%s", err, out)
		}
		want := map[string]string{"a.npy": "float32 (1, 2, 3) [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]", "b.npy": "int64 (3,) [5, 6, 7]"}[name]
		if strings.TrimSpace(string(out)) != want {
			t.Fatalf("numpy read %q, want %q", out, want)
		}
	}
}
