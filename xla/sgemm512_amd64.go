package xla

import "golang.org/x/sys/cpu"

// The AVX-512 kernel's tile: sgemmKernel512 adds an 8×32 block of C per call, from A packed
// [k][8] and B packed [k][32].
const (
	sgemm512MR = 8
	sgemm512NR = 32
)

// sgemmKernel512 is in sgemm512_amd64.s.
//
//go:noescape
func sgemmKernel512(k int, a, b, c *float32, ldc int)

// haveSgemm512 says whether this CPU runs the AVX-512 kernel. Its instructions (VMOVUPS,
// VBROADCASTSS, VFMADD231PS, VADDPS and VPXORD on ZMM registers) are all AVX-512F, and
// cpu.X86.HasAVX512F is only set when the OS also saves the opmask and ZMM state (XCR0 bits
// 5–7, checked through XGETBV in golang.org/x/sys/cpu).
var haveSgemm512 = cpu.X86.HasAVX512F
