//go:build !amd64

package xla

// Only amd64 has the element-wise assembly; elsewhere the Go loops run.
func simdVV[T float32 | float64](op binaryOp, o, a, b []T) bool { return false }

func simdVS[T float32 | float64](op binaryOp, o, a []T, s T) bool { return false }

func simdSV[T float32 | float64](op binaryOp, o []T, s T, b []T) bool { return false }

func simdLogistic[T float32 | float64](in, out []T) int { return 0 }
