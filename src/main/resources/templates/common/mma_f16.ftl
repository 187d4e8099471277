<#-- mma.sync m16n8k16 with ${elemPtx} operands and FP32 accumulation: D = A * B + D.
     A: 4 registers (rows g / g+8, k 2t.. / 2t+8..), B: 2 registers (column g, k 2t.. / 2t+8..),
     D: (g,2t) (g,2t+1) (g+8,2t) (g+8,2t+1), with g = lane / 4 and t = lane % 4. -->
__device__ __forceinline__ void sage_mma16816(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.${elemPtx}.${elemPtx}.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
