<#-- The int8-fp8 operand layout (spec/Int8Fp8Layout.java, docs/int8-fp8-quantization.md), as the
     quantizers and the attention kernels that read their output both see it. -->
constexpr int SAGE_INT8_MAX = ${int8Max};
constexpr float SAGE_FP8_MAX = ${fp8Max};
constexpr float LOG2_FP8_MAX = ${log2Fp8Max}f;
constexpr int Q_SCALE_ROWS = ${qScaleRows};            // a Q scale slice (scales stored per whole slice)
constexpr int Q_GROUPS_PER_SLICE = ${qGroupsPerSlice};  // groups: rows equal mod this
constexpr int K_SCALE_TOKENS = ${kScaleTokens};        // a K scale block; its groups are (token % 8) / 2
constexpr int K_GROUPS_PER_BLOCK = ${kGroupsPerBlock};
constexpr int V_PERM_PERIOD = ${vPermPeriod};          // V^T's tokens are permuted inside every 16
constexpr int ROW_SUM_COLUMNS = ${rowSumColumns};       // ones appended to V: P~ V's last n8 tile is l
constexpr u32 SAGE_E4M3_ONES = ${e4m3OnesWord};  // four E4M3 1.0 bytes

// The Q scale group of query row `row` among its (batch, head)'s scales.
__device__ __forceinline__ int sage2_q_group(int row) {
    return row / Q_SCALE_ROWS * Q_GROUPS_PER_SLICE + row % Q_GROUPS_PER_SLICE;
}
// The K scale group of key token `n` among its (batch, kv head)'s scales.
__device__ __forceinline__ int sage2_k_group(int n) {
    return n / K_SCALE_TOKENS * K_GROUPS_PER_BLOCK + (n % 8) / 2;
}
// Token `i` (0 .. K_SCALE_TOKENS / K_GROUPS_PER_BLOCK - 1, in order) of group `t` within its K scale
// block: the inverse of sage2_k_group inside one block.
__device__ __forceinline__ int sage2_k_group_token(int t, int i) {
    return 8 * (i / 2) + 2 * t + i % 2;
}
