//go:build !amd64

package xla

// Only amd64 has the assembly kernel; elsewhere Sgemm uses gonum.
const haveSgemmKernel = false

func sgemmKernel6x16(k int, a, b, c *float32, ldc int) { panic("no sgemm kernel on this platform") }
