package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// elemKind is an element type as stored in a file (little-endian).
type elemKind int

const (
	kindInvalid elemKind = iota
	kindF32
	kindF64
	kindF16
	kindBF16
	kindI64
	kindI32
	kindI16
	kindI8
	kindU64
	kindU32
	kindU16
	kindU8
	kindBool
)

var kindInfo = [...]struct {
	name  string       // safetensors dtype name
	size  int          // bytes per element in the file
	dtype dtypes.DType // dtype of the tensor we return
}{
	kindInvalid: {"?", 0, dtypes.InvalidDType},
	kindF32:     {"F32", 4, dtypes.Float32},
	kindF64:     {"F64", 8, dtypes.Float64},
	kindF16:     {"F16", 2, dtypes.Float32}, // widened on read
	kindBF16:    {"BF16", 2, dtypes.Float32},
	kindI64:     {"I64", 8, dtypes.Int64},
	kindI32:     {"I32", 4, dtypes.Int32},
	kindI16:     {"I16", 2, dtypes.Int16},
	kindI8:      {"I8", 1, dtypes.Int8},
	kindU64:     {"U64", 8, dtypes.Uint64},
	kindU32:     {"U32", 4, dtypes.Uint32},
	kindU16:     {"U16", 2, dtypes.Uint16},
	kindU8:      {"U8", 1, dtypes.Uint8},
	kindBool:    {"BOOL", 1, dtypes.Bool},
}

func (k elemKind) String() string { return kindInfo[k].name }
func (k elemKind) size() int      { return kindInfo[k].size }

// kindOfSafetensors maps a safetensors dtype name to its kind (kindInvalid if unsupported).
func kindOfSafetensors(name string) elemKind {
	for k := kindF32; k <= kindBool; k++ {
		if kindInfo[k].name == name {
			return k
		}
	}
	return kindInvalid
}

// kindOfDType maps a tensor dtype to the kind written to safetensors (kindInvalid if unsupported).
// Float16 and BFloat16 tensors are written as F16 and BF16.
func kindOfDType(dt dtypes.DType) elemKind {
	switch dt {
	case dtypes.Float16:
		return kindF16
	case dtypes.BFloat16:
		return kindBF16
	}
	for k := kindF32; k <= kindBool; k++ {
		if k != kindF16 && k != kindBF16 && kindInfo[k].dtype == dt {
			return k
		}
	}
	return kindInvalid
}

// maxElements bounds the number of elements of one tensor (2⁴⁰), so that sizes computed
// from untrusted headers cannot overflow.
const maxElements = 1 << 40

// numElements returns the product of dims, or an error if one is negative or the product
// overflows maxElems.
func numElements(dims []int, maxElems int) (int, error) {
	n := 1
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", dims)
		}
		if d == 0 {
			return 0, nil
		}
	}
	for _, d := range dims {
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > uint64(maxElems) {
			return 0, fmt.Errorf("shape %v is too large", dims)
		}
		n = int(lo)
	}
	return n, nil
}

// stridedSpan checks that a view (dims, strides, offset, all in elements) fits a storage of
// storageElems elements and returns whether it is the contiguous row-major layout.
func stridedSpan(dims, strides []int, offset, storageElems int) (contiguous bool, err error) {
	if len(strides) != len(dims) {
		return false, fmt.Errorf("%d strides for %d dimensions", len(strides), len(dims))
	}
	if offset < 0 {
		return false, fmt.Errorf("negative storage offset %d", offset)
	}
	n, err := numElements(dims, maxElements)
	if err != nil {
		return false, err
	}
	if n == 0 {
		return true, nil
	}
	if offset >= storageElems {
		return false, fmt.Errorf("storage offset %d is past the end of its storage of %d elements", offset, storageElems)
	}
	last := offset // index of the last element reached
	for i, d := range dims {
		s := strides[i]
		if s < 0 {
			return false, fmt.Errorf("negative stride %d", s)
		}
		hi, lo := bits.Mul64(uint64(d-1), uint64(s))
		if hi != 0 || lo > uint64(storageElems) {
			return false, fmt.Errorf("view (size %v, stride %v, offset %d) exceeds its storage of %d elements",
				dims, strides, offset, storageElems)
		}
		last += int(lo)
	}
	if last >= storageElems {
		return false, fmt.Errorf("view (size %v, stride %v, offset %d) exceeds its storage of %d elements",
			dims, strides, offset, storageElems)
	}
	expect := 1
	contiguous = true
	for i := len(dims) - 1; i >= 0; i-- {
		if dims[i] != 1 && strides[i] != expect {
			contiguous = false
			break
		}
		expect *= dims[i]
	}
	return contiguous, nil
}

// gather copies the elements of a strided view (already checked with stridedSpan) out of
// raw, returning them contiguous in row-major order.
func gather(raw []byte, size int, dims, strides []int, offset, n int) []byte {
	out := make([]byte, n*size)
	if n == 0 {
		return out
	}
	rank := len(dims)
	if rank == 0 {
		copy(out, raw[offset*size:(offset+1)*size])
		return out
	}
	idx := make([]int, rank)
	inner, innerStride := dims[rank-1], strides[rank-1]*size
	src, o := offset*size, 0
	for o < len(out) {
		s := src
		for range inner {
			copy(out[o:o+size], raw[s:s+size])
			o += size
			s += innerStride
		}
		for d := rank - 2; d >= 0; d-- {
			idx[d]++
			src += strides[d] * size
			if idx[d] < dims[d] {
				break
			}
			src -= strides[d] * size * dims[d]
			idx[d] = 0
		}
	}
	return out
}

// toTensor builds a tensor of the given dimensions from n contiguous little-endian elements
// of kind k. F16 and BF16 are widened to float32.
func toTensor(k elemKind, dims []int, data []byte) *tensors.Tensor {
	t := tensors.FromShape(shapes.Make(kindInfo[k].dtype, dims...))
	if len(data) == 0 {
		return t
	}
	switch k {
	case kindF16:
		tensors.MustMutableFlatData(t, func(flat []float32) {
			for i := range flat {
				flat[i] = halfToFloat32(binary.LittleEndian.Uint16(data[2*i:]))
			}
		})
	case kindBF16:
		tensors.MustMutableFlatData(t, func(flat []float32) {
			for i := range flat {
				flat[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(data[2*i:])) << 16)
			}
		})
	case kindBool:
		tensors.MustMutableFlatData(t, func(flat []bool) {
			for i := range flat {
				flat[i] = data[i] != 0
			}
		})
	default:
		must(t.MutableBytes(func(b []byte) {
			copy(b, data)
			fromLittleEndian(b, k.size())
		}))
	}
	return t
}

// tensorBytes returns the tensor's data as contiguous little-endian bytes.
func tensorBytes(t *tensors.Tensor, k elemKind) ([]byte, error) {
	n := t.Shape().Size()
	out := make([]byte, n*k.size())
	if n == 0 {
		return out, nil
	}
	if k == kindBool {
		err := tensors.ConstFlatData(t, func(flat []bool) {
			for i, v := range flat {
				if v {
					out[i] = 1
				}
			}
		})
		return out, err
	}
	err := t.ConstBytes(func(b []byte) { copy(out, b) })
	fromLittleEndian(out, k.size()) // byte swapping is its own inverse
	return out, err
}

// fromLittleEndian converts, in place, elements of the given size between little-endian and
// the host's byte order (a no-op on little-endian hosts).
func fromLittleEndian(b []byte, size int) {
	if size > 1 && binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		swapBytes(b, size)
	}
}

// halfToFloat32 converts IEEE 754 binary16 bits to float32 exactly, subnormals, infinities
// and NaNs included.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f && mant == 0: // ±inf
		return math.Float32frombits(sign | 0x7f800000)
	case exp == 0x1f: // NaN: payload kept, quieted (as F16C hardware and PyTorch do)
		return math.Float32frombits(sign | 0x7fc00000 | mant<<13)
	case exp == 0: // zero / subnormal: mant × 2⁻²⁴, exact in float32
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
