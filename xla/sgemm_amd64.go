package xla

import "golang.org/x/sys/cpu"

// sgemmKernel6x16 is in sgemm_amd64.s.
//
//go:noescape
func sgemmKernel6x16(k int, a, b, c *float32, ldc int)

// haveSgemmKernel says whether this CPU runs the AVX2/FMA kernel.
var haveSgemmKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA
