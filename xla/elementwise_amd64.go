package xla

import "golang.org/x/sys/cpu"

// Assembly for float32 element-wise arithmetic (elementwise_amd64.s); op is a binaryOp
// among opAdd, opSub, opMul, opDiv.
//
//go:noescape
func vvFloat32(op binaryOp, o, a, b *float32, n int)

//go:noescape
func vsFloat32(op binaryOp, o, a *float32, s float32, n int)

//go:noescape
func svFloat32(op binaryOp, o, b *float32, s float32, n int)

var haveAVXArith = cpu.X86.HasAVX

// simdVV computes o = a op b with the assembly when it can; false means "do it in Go".
func simdVV[T float32 | float64](op binaryOp, o, a, b []T) bool {
	o32, ok := any(o).([]float32)
	if !ok || !haveAVXArith || op > opDiv || len(o32) == 0 {
		return false
	}
	vvFloat32(op, &o32[0], &any(a).([]float32)[0], &any(b).([]float32)[0], len(o32))
	return true
}

func simdVS[T float32 | float64](op binaryOp, o, a []T, s T) bool {
	o32, ok := any(o).([]float32)
	if !ok || !haveAVXArith || op > opDiv || len(o32) == 0 {
		return false
	}
	vsFloat32(op, &o32[0], &any(a).([]float32)[0], any(s).(float32), len(o32))
	return true
}

func simdSV[T float32 | float64](op binaryOp, o []T, s T, b []T) bool {
	o32, ok := any(o).([]float32)
	if !ok || !haveAVXArith || op > opDiv || len(o32) == 0 {
		return false
	}
	svFloat32(op, &o32[0], &any(b).([]float32)[0], any(s).(float32), len(o32))
	return true
}

// logisticFloat32 is in logistic_amd64.s; n must be a multiple of 4.
//
//go:noescape
func logisticFloat32(o, x *float32, n int)

var haveSIMDLogistic = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// simdLogistic computes the whole-four part of a float32 Logistic with the assembly and
// returns how many elements it did (0 when it cannot).
func simdLogistic[T float32 | float64](in, out []T) int {
	in32, ok := any(in).([]float32)
	n := len(in) &^ 3
	if !ok || !haveSIMDLogistic || n == 0 {
		return 0
	}
	logisticFloat32(&any(out).([]float32)[0], &in32[0], n)
	return n
}
