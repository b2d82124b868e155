package npy

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// npyFile builds a version 1.0 .npy file with the given header dict and data bytes,
// padded as NumPy pads it.
func npyFile(dict string, data []byte) []byte {
	h := dict + strings.Repeat(" ", 63-(10+len(dict))%64) + "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h)))
	b = append(b, h...)
	return append(b, data...)
}

// Issue 18's damaged files (and their relatives) are errors that name the file and say
// what is wrong, quickly and without allocating what the header claims.
func TestDamagedFiles(t *testing.T) {
	const mnist = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }"
	img := make([]byte, 4*28*28) // one 28×28 float32 image
	good := npyFile(strings.Replace(mnist, "%s", "1, 28, 28", 1), img)
	noNewline := append([]byte{}, good[:10]...)
	noNewline = append(noNewline, good[10:10+int(binary.LittleEndian.Uint16(good[8:10]))-1]...)
	noNewline = append(noNewline, ' ')
	noNewline = append(noNewline, img...)
	longHeader := append([]byte{}, good...)
	binary.LittleEndian.PutUint16(longHeader[8:10], 65535)
	v2 := []byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f{")
	for _, c := range []struct {
		name string
		file []byte
		want string
	}{
		{"no_newline", noNewline, "does not end with a newline"},
		{"header_past_end", longHeader, "header length 65535 is past the end of the file"},
		{"v2_header_past_end", v2, "header length 2147483647 is past the end"},
		{"negative_dim", npyFile(strings.Replace(mnist, "%s", "-1, 28, 28", 1), img), "dimension -1 is negative"},
		{"2e9_images", npyFile(strings.Replace(mnist, "%s", "2000000000, 28, 28", 1), img), "needs more data than the file holds"},
		{"200000_images_8KB", npyFile(strings.Replace(mnist, "%s", "200000, 28, 28", 1), make([]byte, 8192)), "needs more data than the file holds"},
		{"overflowing_shape", npyFile(strings.Replace(mnist, "%s", "4294967296, 4294967296, 4294967296", 1), img), "needs more data than the file holds"},
		{"truncated", good[:len(good)-3], "needs 3136 data bytes but the file holds 3133"},
		{"extra_bytes", append(append([]byte{}, good...), 1, 2), "2 extra bytes"},
		{"fortran", npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 28, 28), }", img), "Fortran-ordered"},
		{"dtype", npyFile("{'descr': '<u2', 'fortran_order': False, 'shape': (1, 28, 28), }", img), `dtype "<u2" is not supported`},
		{"structured", npyFile("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", img), "structured dtypes"},
		{"missing_shape", npyFile("{'descr': '<f4', 'fortran_order': False, }", img), `key "shape" is missing`},
		{"bad_fortran", npyFile("{'descr': '<f4', 'fortran_order': 0, 'shape': (1, 28, 28), }", img), "fortran_order is not True or False"},
		{"empty", npyFile(strings.Replace(mnist, "%s", "0, 28, 28", 1), nil), "has no elements"},
		{"version", []byte("\x93NUMPY\x09\x00\x10\x00"), "format version 9.0"},
		{"magic", []byte("PK\x03\x04 not numpy"), "not a .npy file"},
		{"short", []byte("\x93NUMPY\x01\x00\x10"), "truncated before the header length"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.name+".npy")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got, err := Read(path)
			if err == nil {
				t.Fatalf("read %v, want an error containing %q", got.Shape(), c.want)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q: want the path and %q", err, c.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	// The undamaged file reads, so the cases above fail for their damage alone.
	path := filepath.Join(t.TempDir(), "good.npy")
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(path); err != nil || got.Shape().Size() != 784 {
		t.Fatalf("good file: %v, %v", got, err)
	}
}

// Big-endian files, Python 2 long dimensions and version 2.0 headers read with their
// values (NumPy writes all three).
func TestHeaderVariants(t *testing.T) {
	be := npyFile("{'descr': '>i4', 'fortran_order': False, 'shape': (2L,), }", []byte{0, 0, 0, 7, 0xff, 0xff, 0xff, 0xfe})
	h := "{'descr': '<f8', 'fortran_order': False, 'shape': (), }\n"
	v2 := append([]byte("\x93NUMPY\x02\x00"), binary.LittleEndian.AppendUint32(nil, uint32(len(h)))...)
	v2 = append(append(v2, h...), 0, 0, 0, 0, 0, 0, 0xf8, 0x3f) // 1.5
	for _, c := range []struct {
		file []byte
		want string
	}{{be, "{7, -2}"}, {v2, "1.5"}} {
		path := filepath.Join(t.TempDir(), "v.npy")
		if err := os.WriteFile(path, c.file, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if s := got.String(); !strings.Contains(s, c.want) {
			t.Fatalf("got %s, want %s", s, c.want)
		}
	}
}
