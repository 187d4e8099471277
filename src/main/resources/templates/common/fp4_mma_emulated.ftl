<#-- The block-scaled FP4 MMA of sm_120a emulated with 16-bit MMAs (any sm_80+ GPU), with the same
     register interface: A 4 x 8 E2M1 nibbles (row g + 8(r & 1), k = 32(r >> 1) + 8t + j), B 2 x 8
     (column g, k = 32r + 8t + j), scale words in the lanes the hardware reads them from (row g's in
     lane 4g, row g + 8's in 4g + 1, column g's in 4g; byte c scales k-chunk c of 16). Each element
     becomes value * scale, exact in ${elemPtx} (at most 6 significant bits, 2^-10..2688), so the
     result equals the FP4 MMA up to FP32 summation order. The k index is only summed over, so each
     thread puts its own eight k of a 32-group where the m16n8k16 fragment wants k 2t, 2t+1, 2t+8,
     2t+9: j 0-3 in one MMA, j 4-7 in the next, the same for A and B. Needs fp4.ftl and mma_f16.ftl. -->
// The value of an E2M1 code, from its bits (a table indexed at run time would live in local memory):
// exponent e = bits 2..1, mantissa bit 0; e = 0 is 0 or 0.5, else 2^(e - 1) * (1 + m / 2).
__device__ __forceinline__ float sage_e2m1_value(u32 code) {
    const u32 e = (code >> 1) & 3u, m = code & 1u;
    const float v = e == 0 ? 0.5f * (float)m : __uint_as_float(((e + 126u) << 23) | (m << 22));
    return (code & 8u) ? -v : v;
}

// Two dequantized elements (nibbles j, j + 1 of `reg`) as one 16-bit pair.
__device__ __forceinline__ u32 sage_fp4_pair(u32 reg, int j, float scale) {
    return sage_pack2(sage_e2m1_value((reg >> (4 * j)) & 15u) * scale, sage_e2m1_value((reg >> (4 * j + 4)) & 15u) * scale);
}

__device__ __forceinline__ void sage_mma_fp4(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1, u32 sfa, u32 sfb) {
    const int lane = threadIdx.x & 31, t = lane & 3, quad = lane & ~3;
    const u32 wa[2] = {__shfl_sync(0xffffffffu, sfa, quad), __shfl_sync(0xffffffffu, sfa, quad | 1)};
    const u32 wb = __shfl_sync(0xffffffffu, sfb, quad);
    const u32 b[2] = {b0, b1};
    #pragma unroll
    for (int grp = 0; grp < 2; ++grp) {
        const int chunk = 2 * grp + t / 2;  // this thread's 16-chunk of the k64 step in this 32-group
        const float sa0 = sage_e4m3_value((wa[0] >> (8 * chunk)) & 0xFFu);
        const float sa1 = sage_e4m3_value((wa[1] >> (8 * chunk)) & 0xFFu);
        const float sb = sage_e4m3_value((wb >> (8 * chunk)) & 0xFFu);
        #pragma unroll
        for (int half = 0; half < 2; ++half) {  // j 0-3, then j 4-7
            const int j = 4 * half;
            const u32 af[4] = {sage_fp4_pair(a[2 * grp], j, sa0), sage_fp4_pair(a[2 * grp + 1], j, sa1),
                               sage_fp4_pair(a[2 * grp], j + 2, sa0), sage_fp4_pair(a[2 * grp + 1], j + 2, sa1)};
            sage_mma16816(d, af, sage_fp4_pair(b[grp], j, sb), sage_fp4_pair(b[grp], j + 2, sb));
        }
    }
}

// Two E2M1 codes in one byte, lo in the low nibble (software rounding, as the hardware cvt).
__device__ __forceinline__ u32 sage_e2m1x2(float lo, float hi) { return sage_e2m1(lo) | (sage_e2m1(hi) << 4); }
