//go:build !purego

#include "textflag.h"

// func structuralMasks(p []byte, out []uint64)
//
// For each 64 bytes of p (len(p) a multiple of 64, len(out) at least
// 3*len(p)/64) it writes three masks, one bit per byte: the quotes, the
// opening brackets ('[' or '{') and the closing ones (']' or '}').
// Requires AVX2.
TEXT ·structuralMasks(SB), NOSPLIT, $0-48
	MOVQ p_base+0(FP), SI
	MOVQ p_len+8(FP), CX
	MOVQ out_base+24(FP), DI
	SHRQ $6, CX
	JZ   done

	MOVQ         $0x2222222222222222, AX // '"'
	MOVQ         AX, X8
	VPBROADCASTQ X8, Y8
	MOVQ         $0xdfdfdfdfdfdfdfdf, AX // clears 0x20: '{' and '}' become '[' and ']'
	MOVQ         AX, X9
	VPBROADCASTQ X9, Y9
	MOVQ         $0x5b5b5b5b5b5b5b5b, AX // '['
	MOVQ         AX, X10
	VPBROADCASTQ X10, Y10
	MOVQ         $0x5d5d5d5d5d5d5d5d, AX // ']'
	MOVQ         AX, X11
	VPBROADCASTQ X11, Y11

loop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1

	VPCMPEQB  Y8, Y0, Y2
	VPCMPEQB  Y8, Y1, Y3
	VPMOVMSKB Y2, AX
	VPMOVMSKB Y3, BX
	SHLQ      $32, BX
	ORQ       BX, AX
	MOVQ      AX, (DI)

	VPAND Y9, Y0, Y0
	VPAND Y9, Y1, Y1

	VPCMPEQB  Y10, Y0, Y2
	VPCMPEQB  Y10, Y1, Y3
	VPMOVMSKB Y2, AX
	VPMOVMSKB Y3, BX
	SHLQ      $32, BX
	ORQ       BX, AX
	MOVQ      AX, 8(DI)

	VPCMPEQB  Y11, Y0, Y2
	VPCMPEQB  Y11, Y1, Y3
	VPMOVMSKB Y2, AX
	VPMOVMSKB Y3, BX
	SHLQ      $32, BX
	ORQ       BX, AX
	MOVQ      AX, 16(DI)

	ADDQ $64, SI
	ADDQ $24, DI
	DECQ CX
	JNZ  loop

	VZEROUPPER

done:
	RET
