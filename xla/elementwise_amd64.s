#include "textflag.h"

// Element-wise float32 arithmetic on AVX: o[i] = a[i] op b[i] (vvFloat32), a[i] op s
// (vsFloat32) and s op b[i] (svFloat32), for op 0 add, 1 subtract, 2 multiply, 3 divide.
// One IEEE operation per element, as the Go loops do, so results are identical to them.
// o may be a or b (outputs written in place): each block is loaded before it is stored.
// Registers: DI = o, SI = first vector operand, DX = second (vv), CX = n, Y15 = s.

// VV(packed op, scalar op, labels…): 32 floats per step, then 8, then one at a time.
#define VV(PS, SS, L32, L8, L1, DONE) \
L32: \
	CMPQ    CX, $32 \
	JLT     L8 \
	VMOVUPS (SI), Y0 \
	VMOVUPS 32(SI), Y1 \
	VMOVUPS 64(SI), Y2 \
	VMOVUPS 96(SI), Y3 \
	PS      (DX), Y0, Y0 \
	PS      32(DX), Y1, Y1 \
	PS      64(DX), Y2, Y2 \
	PS      96(DX), Y3, Y3 \
	VMOVUPS Y0, (DI) \
	VMOVUPS Y1, 32(DI) \
	VMOVUPS Y2, 64(DI) \
	VMOVUPS Y3, 96(DI) \
	ADDQ    $128, SI \
	ADDQ    $128, DX \
	ADDQ    $128, DI \
	SUBQ    $32, CX \
	JMP     L32 \
L8: \
	CMPQ    CX, $8 \
	JLT     L1 \
	VMOVUPS (SI), Y0 \
	PS      (DX), Y0, Y0 \
	VMOVUPS Y0, (DI) \
	ADDQ    $32, SI \
	ADDQ    $32, DX \
	ADDQ    $32, DI \
	SUBQ    $8, CX \
	JMP     L8 \
L1: \
	TESTQ   CX, CX \
	JEQ     DONE \
	VMOVSS  (SI), X0 \
	SS      (DX), X0, X0 \
	VMOVSS  X0, (DI) \
	ADDQ    $4, SI \
	ADDQ    $4, DX \
	ADDQ    $4, DI \
	DECQ    CX \
	JMP     L1

// VS: the second operand is Y15, the broadcast scalar. SV: the first one is.
#define VS(PS, SS, L32, L8, L1, DONE) \
L32: \
	CMPQ    CX, $32 \
	JLT     L8 \
	VMOVUPS (SI), Y0 \
	VMOVUPS 32(SI), Y1 \
	VMOVUPS 64(SI), Y2 \
	VMOVUPS 96(SI), Y3 \
	PS      Y15, Y0, Y0 \
	PS      Y15, Y1, Y1 \
	PS      Y15, Y2, Y2 \
	PS      Y15, Y3, Y3 \
	VMOVUPS Y0, (DI) \
	VMOVUPS Y1, 32(DI) \
	VMOVUPS Y2, 64(DI) \
	VMOVUPS Y3, 96(DI) \
	ADDQ    $128, SI \
	ADDQ    $128, DI \
	SUBQ    $32, CX \
	JMP     L32 \
L8: \
	CMPQ    CX, $8 \
	JLT     L1 \
	VMOVUPS (SI), Y0 \
	PS      Y15, Y0, Y0 \
	VMOVUPS Y0, (DI) \
	ADDQ    $32, SI \
	ADDQ    $32, DI \
	SUBQ    $8, CX \
	JMP     L8 \
L1: \
	TESTQ   CX, CX \
	JEQ     DONE \
	VMOVSS  (SI), X0 \
	SS      X15, X0, X0 \
	VMOVSS  X0, (DI) \
	ADDQ    $4, SI \
	ADDQ    $4, DI \
	DECQ    CX \
	JMP     L1

#define SV(PS, SS, L32, L8, L1, DONE) \
L32: \
	CMPQ    CX, $32 \
	JLT     L8 \
	VMOVUPS (SI), Y0 \
	VMOVUPS 32(SI), Y1 \
	VMOVUPS 64(SI), Y2 \
	VMOVUPS 96(SI), Y3 \
	PS      Y0, Y15, Y0 \
	PS      Y1, Y15, Y1 \
	PS      Y2, Y15, Y2 \
	PS      Y3, Y15, Y3 \
	VMOVUPS Y0, (DI) \
	VMOVUPS Y1, 32(DI) \
	VMOVUPS Y2, 64(DI) \
	VMOVUPS Y3, 96(DI) \
	ADDQ    $128, SI \
	ADDQ    $128, DI \
	SUBQ    $32, CX \
	JMP     L32 \
L8: \
	CMPQ    CX, $8 \
	JLT     L1 \
	VMOVUPS (SI), Y0 \
	PS      Y0, Y15, Y0 \
	VMOVUPS Y0, (DI) \
	ADDQ    $32, SI \
	ADDQ    $32, DI \
	SUBQ    $8, CX \
	JMP     L8 \
L1: \
	TESTQ   CX, CX \
	JEQ     DONE \
	VMOVSS  (SI), X0 \
	SS      X0, X15, X0 \
	VMOVSS  X0, (DI) \
	ADDQ    $4, SI \
	ADDQ    $4, DI \
	DECQ    CX \
	JMP     L1

// func vvFloat32(op int, o, a, b *float32, n int)
TEXT ·vvFloat32(SB), NOSPLIT, $0-40
	MOVQ op+0(FP), AX
	MOVQ o+8(FP), DI
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), DX
	MOVQ n+32(FP), CX
	CMPQ AX, $1
	JEQ  vvsub
	CMPQ AX, $2
	JEQ  vvmul
	CMPQ AX, $3
	JEQ  vvdiv
	VV(VADDPS, VADDSS, vvadd32, vvadd8, vvadd1, vvdone)
vvsub:
	VV(VSUBPS, VSUBSS, vvsub32, vvsub8, vvsub1, vvdone)
vvmul:
	VV(VMULPS, VMULSS, vvmul32, vvmul8, vvmul1, vvdone)
vvdiv:
	VV(VDIVPS, VDIVSS, vvdiv32, vvdiv8, vvdiv1, vvdone)
vvdone:
	VZEROUPPER
	RET

// func vsFloat32(op int, o, a *float32, s float32, n int)
TEXT ·vsFloat32(SB), NOSPLIT, $0-40
	MOVQ         op+0(FP), AX
	MOVQ         o+8(FP), DI
	MOVQ         a+16(FP), SI
	VBROADCASTSS s+24(FP), Y15
	MOVQ         n+32(FP), CX
	CMPQ         AX, $1
	JEQ          vssub
	CMPQ         AX, $2
	JEQ          vsmul
	CMPQ         AX, $3
	JEQ          vsdiv
	VS(VADDPS, VADDSS, vsadd32, vsadd8, vsadd1, vsdone)
vssub:
	VS(VSUBPS, VSUBSS, vssub32, vssub8, vssub1, vsdone)
vsmul:
	VS(VMULPS, VMULSS, vsmul32, vsmul8, vsmul1, vsdone)
vsdiv:
	VS(VDIVPS, VDIVSS, vsdiv32, vsdiv8, vsdiv1, vsdone)
vsdone:
	VZEROUPPER
	RET

// func svFloat32(op int, o, b *float32, s float32, n int)
TEXT ·svFloat32(SB), NOSPLIT, $0-40
	MOVQ         op+0(FP), AX
	MOVQ         o+8(FP), DI
	MOVQ         b+16(FP), SI
	VBROADCASTSS s+24(FP), Y15
	MOVQ         n+32(FP), CX
	CMPQ         AX, $1
	JEQ          svsub
	CMPQ         AX, $2
	JEQ          svmul
	CMPQ         AX, $3
	JEQ          svdiv
	SV(VADDPS, VADDSS, svadd32, svadd8, svadd1, svdone)
svsub:
	SV(VSUBPS, VSUBSS, svsub32, svsub8, svsub1, svdone)
svmul:
	SV(VMULPS, VMULSS, svmul32, svmul8, svmul1, svdone)
svdiv:
	SV(VDIVPS, VDIVSS, svdiv32, svdiv8, svdiv1, svdone)
svdone:
	VZEROUPPER
	RET
