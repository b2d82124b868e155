//go:build !amd64

package xla

// Only amd64 has assembly kernels; elsewhere Sgemm uses gonum and convolutions the
// pure-Go kernel.
const haveSgemmKernel = false

func sgemmKernel() (microKernel, bool) { return kernelGo, false }

func availableAsmKernels() []microKernel { return nil }
