<#-- The block-scaled FP4 MMA and E2M1 packing of sm_120a (MMA-FACTS section D). -->
// D += A * B with E4M3 block scales: sfa holds row scales (lane 4(m%8) + m/8, thread-id-a 0), sfb
// column scales (lane 4n, thread-id-b 0); byte j scales k-chunk j (16 values each).
__device__ __forceinline__ void sage_mma_fp4(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1, u32 sfa, u32 sfb) {
    asm volatile("mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X.f32.e2m1.e2m1.f32.ue4m3"
                 " {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3}, %10, {0, 0}, %11, {0, 0};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(sfa), "r"(sfb));
}

// Two E2M1 codes in one byte, the lower-k one (lo) in the low nibble (hardware rounding, sm_120a).
__device__ __forceinline__ u32 sage_e2m1x2(float lo, float hi) {
    unsigned short r;
    asm("{ .reg .b8 b; cvt.rn.satfinite.e2m1x2.f32 b, %1, %2; cvt.u16.u8 %0, b; }\n" : "=h"(r) : "f"(hi), "f"(lo));
    return r & 0xFFu;
}

