package xla

import (
	"reflect"
	_ "unsafe" // for go:linkname

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// SimpleGo transposes through a generic index iterator; im2col and its gradients move
// whole activations between NCHW and [C, B, H, W] in every convolution, which made
// transposes a quarter of a training step. fastTranspose merges axes that stay adjacent,
// then copies rows: with copy() when the innermost axis stays innermost, with a strided
// loop otherwise, split across cores for large tensors.

//go:linkname simplegoExecTranspose github.com/gomlx/gomlx/backends/simplego.execTranspose
func simplegoExecTranspose(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

func fastTranspose(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) *simplego.Buffer {
	in, err := backend.BufferShape(inputs[0])
	perm, ok := nodeIntSlice(node)
	if err != nil || !ok || len(perm) != in.Rank() || in.Rank() == 0 {
		return nil
	}
	outDims := make([]int, len(perm))
	for i, p := range perm {
		outDims[i] = in.Dimensions[p]
	}
	inStrides := make([]int, in.Rank())
	s := 1
	for i := in.Rank() - 1; i >= 0; i-- {
		inStrides[i] = s
		s *= in.Dimensions[i]
	}
	// Per output axis: dimension and input stride; merge axes that are contiguous in both.
	var dims, strides []int
	for i, p := range perm {
		if outDims[i] == 1 {
			continue
		}
		if n := len(dims); n > 0 && strides[n-1] == inStrides[p]*in.Dimensions[p] {
			dims[n-1] *= outDims[i]
			strides[n-1] = inStrides[p]
			continue
		}
		dims, strides = append(dims, outDims[i]), append(strides, inStrides[p])
	}
	out := backend.NewBuffer(shapes.Make(in.DType, outDims...))
	if out == nil {
		return nil
	}
	src, _ := backend.BufferData(inputs[0])
	dst, _ := backend.BufferData(out)
	if len(dims) == 0 { // a single element
		reflect.Copy(reflect.ValueOf(dst), reflect.ValueOf(src))
		return out
	}
	switch sv := src.(type) {
	case []float32:
		transposeRows(sv, dst.([]float32), dims, strides)
	case []float64:
		transposeRows(sv, dst.([]float64), dims, strides)
	case []int32:
		transposeRows(sv, dst.([]int32), dims, strides)
	case []int64:
		transposeRows(sv, dst.([]int64), dims, strides)
	default:
		backend.BufferFinalize(out)
		return nil
	}
	return out
}

// transposeRows writes dst (row-major over dims) from src, where moving one step along
// output axis i moves strides[i] in src.
func transposeRows[T any](src, dst []T, dims, strides []int) {
	last := len(dims) - 1
	n, step := dims[last], strides[last]
	rows := len(dst) / n
	do := func(from, to int) {
		idx := unflatten(from, dims[:last])
		for row := from; row < to; row++ {
			base := 0
			for i, v := range idx {
				base += v * strides[i]
			}
			o := dst[row*n : (row+1)*n]
			if step == 1 {
				copy(o, src[base:base+n])
			} else {
				for j := range o {
					o[j] = src[base+j*step]
				}
			}
			for i := len(idx) - 1; i >= 0; i-- {
				if idx[i]++; idx[i] < dims[i] {
					break
				}
				idx[i] = 0
			}
		}
	}
	splitAcrossCores(rows, len(dst), do)
}
