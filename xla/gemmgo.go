package xla

import "unsafe"

// kernelGo is the micro-kernel in plain Go, for CPUs without the assembly ones: the
// convolution executor needs some kernel everywhere. Same contract and the same order of
// additions per element as the assembly kernels (Go may or may not fuse the multiply-add).
var kernelGo = microKernel{name: "pure Go 4×8", mr: 4, nr: 8, run: sgemmKernelGo}

func sgemmKernelGo(k int, a, b, c *float32, ldc int) {
	const mr, nr = 4, 8
	if k <= 0 {
		return // adds nothing
	}
	as := unsafe.Slice(a, k*mr)
	bs := unsafe.Slice(b, k*nr)
	var acc [mr][nr]float32
	for l := range k {
		bl := bs[l*nr : l*nr+nr]
		for r := range mr {
			av := as[l*mr+r]
			for j, bv := range bl {
				acc[r][j] += av * bv
			}
		}
	}
	for r := range mr {
		row := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(c), r*ldc*4)), nr)
		for j := range nr {
			row[j] += acc[r][j]
		}
	}
}
