<#-- Per key block of the int8-fp8 kernels (mma.sync and wgmma alike): the INT32 scores of Q8 K8^T
     dequantized to FP32, and the softmax's P~ packed into FP8 A fragments. Needs N_TILES, PV_STEPS,
     K_SCALE_BLOCKS and the layout constants (int8_fp8_layout.ftl) from the kernel. -->
// Dequantized scores of block j: the exact INT32 dot (|dot| <= 127^2 * 128 < 2^22, so adding it to
// the bits of 2^23 + 2^22 converts it exactly with one integer add) times qscale * kscale. This
// thread's key columns in each 64-token scale block form one group (4 per block).
__device__ __forceinline__ void sage2_scores(float (&s)[1][N_TILES][4], const int (&acc)[1][N_TILES][4], float qs,
                                             const float* __restrict__ ks_ptr, int j, int nk) {
    constexpr int MAGIC_BITS = 0x4B400000;
    constexpr float MAGIC = 12582912.f;
    float deq[K_SCALE_BLOCKS];
    #pragma unroll
    for (int b = 0; b < K_SCALE_BLOCKS; ++b) {
        const int kb = j * K_SCALE_BLOCKS + b;
        deq[b] = kb * K_SCALE_TOKENS < nk ? qs * ks_ptr[K_GROUPS_PER_BLOCK * kb] : 0.f;
    }
    #pragma unroll
    for (int nt = 0; nt < N_TILES; ++nt) {
        const float f = deq[nt * 8 / K_SCALE_TOKENS];
        #pragma unroll
        for (int e = 0; e < 4; ++e) s[0][nt][e] = (__int_as_float(acc[0][nt][e] + MAGIC_BITS) - MAGIC) * f;
    }
}

// P~ to FP8 A fragments, 32 keys per step: a thread's columns {2t, 2t+1, 8+2t, 9+2t} of each 16
// fill one register; V's tokens are stored in that order (PERM), so no shuffles are needed.
__device__ __forceinline__ void sage2_pack_p(u32 (&p)[PV_STEPS][4], const float (&s)[1][N_TILES][4]) {
    #pragma unroll
    for (int kk = 0; kk < PV_STEPS; ++kk) {
        #pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int nt = 4 * kk + 2 * half;
            p[kk][2 * half] = sage_fp8x4(s[0][nt][0], s[0][nt][1], s[0][nt + 1][0], s[0][nt + 1][1]);
            p[kk][2 * half + 1] = sage_fp8x4(s[0][nt][2], s[0][nt][3], s[0][nt + 1][2], s[0][nt + 1][3]);
        }
    }
}
