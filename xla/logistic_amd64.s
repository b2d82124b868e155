#include "textflag.h"

// func logisticFloat32(o, x *float32, n int)
//
// o[i] = float32(1/(1+e)) for x[i] ≥ 0 and float32(e/(1+e)) otherwise, e = exp(−|x[i]|),
// all in float64 as SimpleGo's Logistic does, four lanes at a time; n is a multiple of 4.
// exp: y = max(−|x|, −120) (below, the float32 result is 0 or 1 anyway) = k·ln2 + r with
// k = round(y·log2 e), r = y − k·ln2 (ln2 in two parts), exp(r) by its Taylor series to
// degree 13 (|r| ≤ ln2/2: truncation < 5e-18), times 2^k built in the exponent bits.
// Needs AVX2 and FMA.
TEXT ·logisticFloat32(SB), NOSPLIT, $0-24
	MOVQ o+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX

	VBROADCASTSD ·logisticConsts+0(SB), Y15  // −0.0 (sign bit)
	VBROADCASTSD ·logisticConsts+8(SB), Y14  // −120
	VBROADCASTSD ·logisticConsts+16(SB), Y13 // log2 e
	VBROADCASTSD ·logisticConsts+24(SB), Y12 // ln2 high part
	VBROADCASTSD ·logisticConsts+32(SB), Y11 // ln2 low part
	VBROADCASTSD ·logisticConsts+40(SB), Y10 // 1.0
	VPBROADCASTQ ·logisticConsts+48(SB), Y9  // 1023 (exponent bias)

loop:
	CMPQ CX, $4
	JLT  done
	VCVTPS2PD (SI), Y0          // x
	VORPD     Y15, Y0, Y1       // −|x|
	VMAXPD    Y1, Y14, Y1       // y = max(−|x|, −120), NaN kept (the second operand wins)
	VMULPD    Y13, Y1, Y2
	VROUNDPD  $0, Y2, Y2        // k = round(y·log2 e)
	VMOVAPD   Y1, Y3
	VFNMADD231PD Y12, Y2, Y3    // r = y − k·ln2hi
	VFNMADD231PD Y11, Y2, Y3    //     − k·ln2lo

	// p = Σ r^i/i!, i = 0…13, by Horner from the top.
	VBROADCASTSD ·logisticConsts+56(SB), Y4 // 1/13!
	VBROADCASTSD ·logisticConsts+64(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+72(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+80(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+88(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+96(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+104(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+112(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+120(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+128(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+136(SB), Y5
	VFMADD213PD  Y5, Y3, Y4
	VBROADCASTSD ·logisticConsts+144(SB), Y5 // 1/2!
	VFMADD213PD  Y5, Y3, Y4
	VFMADD213PD  Y10, Y3, Y4                  // ·r + 1 (1/1!)
	VFMADD213PD  Y10, Y3, Y4                  // ·r + 1 (1/0!)

	// 2^k: (k + 1023) << 52 as float64 bits.
	VCVTPD2DQY  Y2, X6
	VPMOVSXDQ   X6, Y6
	VPADDQ      Y9, Y6, Y6
	VPSLLQ      $52, Y6, Y6
	VMULPD      Y6, Y4, Y4       // e = exp(y)

	VADDPD      Y10, Y4, Y7      // 1 + e
	VXORPD      Y8, Y8, Y8
	VCMPPD      $0x1d, Y8, Y0, Y8 // x ≥ 0 (ordered, GE): numerator 1, else e
	VBLENDVPD   Y8, Y10, Y4, Y5
	VDIVPD      Y7, Y5, Y5
	VCVTPD2PSY  Y5, X5
	VMOVUPS     X5, (DI)

	ADDQ $16, SI
	ADDQ $16, DI
	SUBQ $4, CX
	JMP  loop

done:
	VZEROUPPER
	RET
