<#-- The NVFP4 operand layout (docs/nvfp4-quantization.md, reference/Nvfp4Reference.java) as the
     quantizers and the attention kernels that read their output both see it. -->
constexpr int QMEAN_ROWS = ${qmeanRows};        // rows of one Q smoothing group
constexpr int PERMUTE_GROUP = ${permuteGroup};  // K rows are permuted inside every 32

// The token stored K row base + r holds, for base a multiple of PERMUTE_GROUP (so the group
// arithmetic stays on r, often a compile-time column): inside its 32-row group, row 8a + 2b + c holds
// token 8b + 2a + c (the permutation is its own inverse).
__device__ __forceinline__ int nvfp4_k_token(int base, int r) {
    const int i = r % PERMUTE_GROUP;
    return base + r - i + 2 * (i / 8) + 8 * ((i % 8) / 2) + i % 2;
}
