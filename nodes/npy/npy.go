// Package npy reads and writes NumPy .npy files as GoMLX tensors, for exchanging arrays
// with other implementations (dpsflow model eval, dpsflow step). It wraps
// github.com/sbinet/npyio; float32/float64/int32/int64 arrays of any rank are supported,
// C order only.
package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"os"
	"reflect"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/sbinet/npyio"
)

// Read loads a .npy file. Errors name the file.
func Read(path string) (*tensors.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := npyio.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a .npy file: %w", path, err)
	}
	if r.Header.Descr.Fortran {
		return nil, fmt.Errorf("%s: Fortran-ordered arrays are not supported; save with np.ascontiguousarray", path)
	}
	dims := r.Header.Descr.Shape
	var t *tensors.Tensor
	switch typ := npyio.TypeFrom(r.Header.Descr.Type); typ {
	case reflect.TypeFor[float32]():
		t, err = read[float32](r, dims)
	case reflect.TypeFor[float64]():
		t, err = read[float64](r, dims)
	case reflect.TypeFor[int32]():
		t, err = read[int32](r, dims)
	case reflect.TypeFor[int64]():
		t, err = read[int64](r, dims)
	default:
		return nil, fmt.Errorf("%s: dtype %q is not supported (float32, float64, int32, int64)", path, r.Header.Descr.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func read[T float32 | float64 | int32 | int64](r *npyio.Reader, dims []int) (*tensors.Tensor, error) {
	var data []T
	if err := r.Read(&data); err != nil {
		return nil, err
	}
	if len(dims) == 0 {
		return tensors.FromValue(data[0]), nil
	}
	return tensors.FromFlatDataAndDimensions(data, dims...), nil
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
