package xla

import (
	"os"

	"golang.org/x/sys/cpu"
)

// sgemmKernel6x16 is in sgemm_amd64.s.
//
//go:noescape
func sgemmKernel6x16(k int, a, b, c *float32, ldc int)

// haveSgemmKernel says whether this CPU runs the AVX2/FMA kernel.
var haveSgemmKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

var (
	kernelAVX2   = microKernel{name: "AVX2/FMA 6×16", mr: 6, nr: 16, run: sgemmKernel6x16}
	kernelAVX512 = microKernel{name: "AVX-512 8×32", mr: sgemm512MR, nr: sgemm512NR, run: sgemmKernel512}
)

// sgemmKernel is the fastest micro-kernel this CPU runs; ok is false when there is none.
// Both sum each element's products in the same order, so the choice does not change
// results.
func sgemmKernel() (microKernel, bool) {
	if haveSgemm512 && !disableAVX512 {
		return kernelAVX512, true
	}
	return kernelAVX2, haveSgemmKernel
}

// disableAVX512 (DPSFLOW_NO_AVX512=1) keeps the AVX2 kernel on AVX-512 CPUs: to compare
// the two, or where AVX-512 lowers the clock.
var disableAVX512 = os.Getenv("DPSFLOW_NO_AVX512") != ""

// availableAsmKernels lists the assembly micro-kernels this CPU runs (for tests).
func availableAsmKernels() []microKernel {
	var out []microKernel
	if haveSgemmKernel {
		out = append(out, kernelAVX2)
	}
	if haveSgemm512 {
		out = append(out, kernelAVX512)
	}
	return out
}
